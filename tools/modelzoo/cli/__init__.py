"""Command-line front ends: argument parsing and mapping exceptions to messages and exit codes."""

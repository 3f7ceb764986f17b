"""Stand-in for openvino_telemetry on the path of the Model Optimizer runs modelzoo starts.

The real package sends usage data from a thread that forks a process; in a process that is
importing TensorFlow at the same time this deadlocks (seen here), and no tool should phone
home from a CI job. Failing to import makes the Model Optimizer use its built-in no-op stub.
"""

raise ImportError("openvino_telemetry is disabled by modelzoo")

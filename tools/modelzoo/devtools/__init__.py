"""Development tools, apart from the pipeline: a fault-injecting loopback HTTP server, a runner for
Open Model Zoo's own tools on any zoo, and the offline demo. Tests and benchmarks use them; the
downloader and converter never import them."""

"""The threaded facade, run in subprocesses so that a blocking call can never wedge the runner."""

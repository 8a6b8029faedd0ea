"""The ``twistd leads-comm`` daemon: options, service and the relay behaviour it runs by default."""

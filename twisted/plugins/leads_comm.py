"""Makes ``twistd leads-comm`` available. The tap module is named as a string, so listing the plugins imports
nothing heavy (never the reactor); twistd imports the module only when the subcommand runs."""

from twisted.application.service import ServiceMaker

leads_comm = ServiceMaker(
    "LEADS communication server",
    "leads_twisted.daemon.tap",
    "Run the LEADS communication server: a relay hub for vehicle clients (or echo, or log only).",
    "leads-comm",
)

"""Loaded by the test interpreter only when this folder is on ``PYTHONPATH``: every pyOpenSSL context that is
given a certificate also gets a Python info callback, as TLS code written on Twisted's own certificate options
does. Under MDWE that needs memory the kernel refuses, so the daemon's TLS self-check must fail and say so."""

from OpenSSL import SSL

_plain_use_certificate = SSL.Context.use_certificate


def _use_certificate_and_a_callback(self, certificate):
    _plain_use_certificate(self, certificate)
    self.set_info_callback(lambda connection, where, value: None)


SSL.Context.use_certificate = _use_certificate_and_a_callback

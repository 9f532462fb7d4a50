"""Pushers and server push handlers: the contract in ``base``, one module per transport."""

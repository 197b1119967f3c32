"""Comparative studies and the ``captum-mm`` command line."""

"""Helpers shared by the tests: harnesses, fakes and the vendored card schema."""

"""A local emulator of the Klaviyo REST API (revision 2026-07-15), for offline tests, benchmarks and demos."""

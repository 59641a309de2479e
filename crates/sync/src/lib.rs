//! Client sync engine (sans-I/O). See DESIGN.md.

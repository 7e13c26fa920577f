//! The BlueZ backend (in progress).

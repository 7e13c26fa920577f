//! The provisioner relay (in progress).

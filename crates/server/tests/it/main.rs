//! Black-box tests: the real `berth` binary on an ephemeral port, driven by the official
//! `aws-sdk-ecr` client (and raw HTTP where an SDK will not send what is being tested).

mod authentication;
mod client_cli;
mod crash;
mod ecr_ops;
mod ecr_public;
mod ecr_settings;
mod events;
mod faults;
mod gc;
mod harness;
mod hostile;
mod iam;
mod images;
mod layer_upload;
mod lifecycle;
mod limits;
mod memory;
mod nodes;
mod observability;
mod oci;
mod outages;
mod policies;
mod pools;
mod protocol;
mod public_v2;
mod pull;
mod pull_through;
mod replication;
mod repositories;
mod restart;
mod s3;
mod soak;
mod ui;

//! The job-hash codec (`codec`), reachable from the fuzz target
//! `fuzz/fuzz_targets/record_decode.rs`, which checks that decoding arbitrary hashes never
//! panics and that encoding then decoding a job is the identity. Not API.

use crate::store::model::Job;
use crate::store::StoreError;

/// The hash fields of `job`, as `create` writes them.
pub fn job_fields(job: &Job) -> Vec<(&'static str, Vec<u8>)> {
    super::codec::job_fields(job)
}

/// A job from a hash reply (`field, value, ...`), as every read decodes it.
pub fn decode_job(pairs: Vec<Vec<u8>>) -> Result<Job, StoreError> {
    super::codec::decode_job(pairs)
}

//! Small CBOR helpers over `ciborium::Value`: bounded, canonical decoding and typed field
//! access. Every zerotouch message body is decoded with these, in this crate and the others.
//!
//! ciborium has no deterministic encoder for maps and floats, so zerotouch only ever encodes
//! arrays, unsigned integers, byte strings, text strings and null, whose encodings ciborium
//! writes in the shortest form (RFC 8949 section 4.2.1), and it verifies signatures over the
//! exact bytes received, never over a re-encoding.

use alloc::vec::Vec;
use ciborium::Value;

use crate::DecodeError;

/// Nesting deeper than this is refused: no zerotouch message nests more than a few levels.
const RECURSION_LIMIT: usize = 16;

/// Encodes a value in the canonical form. Writing into a `Vec` cannot fail for the value shapes zerotouch uses.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Encoding into memory only fails on a writer error, which `Vec` never returns.
    let _ = ciborium::ser::into_writer(value, &mut out);
    out
}

/// Decodes exactly one CBOR item from `bytes`, refusing trailing bytes, deep nesting and any
/// encoding other than the one zerotouch writes (shortest integers and lengths, definite
/// lengths, no tags): one message has one byte form, so a relay cannot make a second valid copy
/// of a message by re-encoding it.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut reader, RECURSION_LIMIT)
        .map_err(|_| DecodeError::InvalidCbor)?;
    if !reader.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Takes an array of exactly `len` elements.
pub fn array(value: Value, field: &'static str, len: usize) -> Result<Vec<Value>, DecodeError> {
    match value {
        Value::Array(items) if items.len() == len => Ok(items),
        Value::Array(items) => Err(DecodeError::WrongLength {
            field,
            found: items.len(),
            expected: len,
        }),
        _ => Err(DecodeError::UnexpectedType {
            field,
            expected: "array",
        }),
    }
}

/// Takes an unsigned integer no larger than `max`.
pub fn uint(value: &Value, field: &'static str, max: u64) -> Result<u64, DecodeError> {
    let Value::Integer(i) = value else {
        return Err(DecodeError::UnexpectedType {
            field,
            expected: "unsigned integer",
        });
    };
    let v = u64::try_from(*i).map_err(|_| DecodeError::OutOfRange { field })?;
    if v > max {
        return Err(DecodeError::OutOfRange { field });
    }
    Ok(v)
}

/// Takes a byte string.
pub fn bytes(value: Value, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    match value {
        Value::Bytes(b) => Ok(b),
        _ => Err(DecodeError::UnexpectedType {
            field,
            expected: "byte string",
        }),
    }
}

/// Takes a byte string of exactly `N` bytes.
pub fn fixed_bytes<const N: usize>(
    value: Value,
    field: &'static str,
) -> Result<[u8; N], DecodeError> {
    let b = bytes(value, field)?;
    let found = b.len();
    b.try_into().map_err(|_| DecodeError::WrongLength {
        field,
        found,
        expected: N,
    })
}

/// Takes an array of at most `max` elements (a list whose length the message does not fix).
pub fn list(value: Value, field: &'static str, max: usize) -> Result<Vec<Value>, DecodeError> {
    match value {
        Value::Array(items) if items.len() <= max => Ok(items),
        Value::Array(_) => Err(DecodeError::OutOfRange { field }),
        _ => Err(DecodeError::UnexpectedType {
            field,
            expected: "array",
        }),
    }
}

/// Takes a byte string of `min..=max` bytes.
pub fn bytes_in(
    value: Value,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, DecodeError> {
    let b = bytes(value, field)?;
    if b.len() < min || b.len() > max {
        return Err(DecodeError::OutOfRange { field });
    }
    Ok(b)
}

/// Takes `null` as `None`, anything else through `f`.
pub fn nullable<T>(
    value: Value,
    f: impl FnOnce(Value) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        v => f(v).map(Some),
    }
}

/// Splits an array's elements into a fixed number of values, for positional decoding.
pub fn fields<const N: usize>(
    value: Value,
    field: &'static str,
) -> Result<[Value; N], DecodeError> {
    let items = array(value, field, N)?;
    items.try_into().map_err(|_| DecodeError::WrongLength {
        field,
        found: 0,
        expected: N,
    })
}

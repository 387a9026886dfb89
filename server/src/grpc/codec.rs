//! The one codec of every gRPC method: rust-protobuf 2 messages on the wire.
//!
//! tonic frames each message (a flag byte and a length) and hands the codec exactly one
//! message's bytes, so encoding is `write_to_writer` into tonic's buffer and decoding is
//! `parse_from_bytes` of those bytes. Bytes that do not parse are the caller's fault: they
//! become `Status::invalid_argument`, and the connection carries on.

use std::marker::PhantomData;

use bytes::{Buf, BufMut};
use protobuf::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// A tonic [`Codec`] sending `E` and receiving `D`, both rust-protobuf 2 messages. The
/// generated stubs build it with `Default` and infer both types from the method.
pub struct ProtoCodec<E, D> {
    // `fn(E) -> D` keeps the codec `Send + Sync` whatever the messages are.
    _types: PhantomData<fn(E) -> D>,
}

impl<E, D> Default for ProtoCodec<E, D> {
    fn default() -> Self {
        ProtoCodec {
            _types: PhantomData,
        }
    }
}

impl<E, D> std::fmt::Debug for ProtoCodec<E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProtoCodec")
    }
}

impl<E: Message, D: Message> Codec for ProtoCodec<E, D> {
    type Encode = E;
    type Decode = D;
    type Encoder = ProtoEncoder<E>;
    type Decoder = ProtoDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProtoEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Writes one message of type `M` (see [`ProtoCodec`]).
#[derive(Debug)]
pub struct ProtoEncoder<M>(PhantomData<fn(M)>);

impl<M: Message> Encoder for ProtoEncoder<M> {
    type Item = M;
    type Error = Status;

    fn encode(&mut self, item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        encode_message(&item, dst)
    }
}

/// Reads one message of type `M` (see [`ProtoCodec`]).
#[derive(Debug)]
pub struct ProtoDecoder<M>(PhantomData<fn() -> M>);

impl<M: Message> Decoder for ProtoDecoder<M> {
    type Item = M;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<M>, Status> {
        decode_message(src).map(Some)
    }
}

/// Appends `msg`'s encoding to `dst`. Fails only on a message rust-protobuf refuses to
/// write (a proto2 message missing a required field: none of ours), an internal error.
pub fn encode_message<M: Message>(msg: &M, dst: &mut impl BufMut) -> Result<(), Status> {
    msg.write_to_writer(&mut dst.writer())
        .map_err(|e| Status::internal(format!("cannot encode {}: {e}", type_name::<M>())))
}

/// Parses all of `src` as one `M`, consuming it. Malformed bytes give
/// `Status::invalid_argument` naming the message type and the parser's complaint.
pub fn decode_message<M: Message>(src: &mut impl Buf) -> Result<M, Status> {
    let len = src.remaining();
    let parsed = if src.chunk().len() == len {
        // The usual case: the message is one contiguous slice, parsed in place.
        M::parse_from_bytes(src.chunk())
    } else {
        M::parse_from_bytes(&src.copy_to_bytes(len))
    };
    // Consume whatever is left so the framing moves on to the next message either way.
    src.advance(src.remaining());
    parsed.map_err(|e| {
        Status::invalid_argument(format!("malformed {} ({len} bytes): {e}", type_name::<M>()))
    })
}

/// The message's short name (`RawGetRequest`), for error messages.
fn type_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use proto::kvrpcpb::RawPutRequest;
    use proto::raft_serverpb::RaftMessage;
    use tonic::Code;

    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let mut put = RawPutRequest::new();
        put.key = b"key".to_vec();
        put.value = vec![0, 1, 2, 255];
        put.cf = "default".into();
        put.mut_context().region_id = 7;
        let mut buf = bytes::BytesMut::new();
        encode_message(&put, &mut buf).expect("encode");
        let back: RawPutRequest = decode_message(&mut buf).expect("decode");
        assert_eq!(back, put);
        assert_eq!(buf.len(), 0, "the decoder consumes its input");

        let mut msg = RaftMessage::new();
        msg.region_id = 3;
        msg.mut_to_peer().store_id = 2;
        msg.mut_message().set_commit(9);
        let mut buf = bytes::BytesMut::new();
        encode_message(&msg, &mut buf).expect("encode");
        assert_eq!(
            decode_message::<RaftMessage>(&mut buf).expect("decode"),
            msg
        );
    }

    #[test]
    fn empty_bytes_are_the_default_message() {
        let mut buf = bytes::Bytes::new();
        let put: RawPutRequest = decode_message(&mut buf).expect("empty is valid proto3");
        assert_eq!(put, RawPutRequest::new());
    }

    #[test]
    fn garbage_is_invalid_argument_not_a_panic() {
        let cases: &[&[u8]] = &[
            &[0x08],                                     // a varint cut short
            &[0xff; 11],                                 // a varint longer than 64 bits
            &[0x0f],                                     // wire type 7 does not exist
            &[0x12, 0x64, b'k'],                         // a 100-byte key with 1 byte present
            &[0x0a, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff], // a nested context of garbage
        ];
        for bytes in cases {
            let mut buf = bytes::Bytes::copy_from_slice(bytes);
            let err = decode_message::<RawPutRequest>(&mut buf).expect_err("must not parse");
            assert_eq!(err.code(), Code::InvalidArgument, "{bytes:02x?}: {err}");
            assert!(err.message().contains("RawPutRequest"), "{err}");
            assert_eq!(buf.remaining(), 0);
        }
    }
}

// Peer authentication: per-node keys, the handshake's proofs, and the keys
// that protect every frame after it.
//
// Keys. The memory node holds the cluster secret S. Processor node N proves
// itself with its node key K_N = HKDF-SHA256(S, salt "remora node key v2",
// info = N as 4 little-endian bytes), never with S itself: a processor given
// only K_N (a node key file, see LoadSecretFile) can authenticate as N and
// as nothing else. A holder of S can derive every K_N, so S is the trust
// root: it belongs on memory nodes and on hosts trusted with every node.
//
// The exchange (protocol version V = wire::kVersion, M = memory node id):
//
//   server -> client   kHello        arg0 = M, payload = Ns
//   client -> server   kAuth         arg0 = N, arg1 = I, payload = Pc || Nc
//   server -> client   kAuth|reply   arg0 = M, payload = Ps
//
//   T  = V (u16) || N (u32) || M (u32) || I (u64) || Ns || Nc
//
// I is the processor's incarnation (TransportOptions::incarnation): covered
// by the proofs, so a relay cannot turn a reconnect into a takeover.
//   Pc = HMAC(K_N, "remora-c2" || T)        Ps = HMAC(K_N, "remora-s2" || T)
//
// Both proofs cover both nonces, both node ids and the version, so a relay
// cannot change who connects to whom, a recorded exchange is useless on the
// next connection (fresh nonces), and the labels keep one side's proof from
// being reflected as the other's. The client checks Ps: only a holder of
// K_N (the memory node) can answer, which is the mutual authentication.
//
// Frames. From the handshake both sides derive one key per direction,
//   Kcs = HMAC(K_N, "remora-k-cs" || T)     Ksc = HMAC(K_N, "remora-k-sc" || T)
// and every later frame carries a 16-byte tag after its payload (not counted
// in payload_len):
//   tag = AES-256-GMAC(K_dir, nonce = seq (u64 LE) || 0 (u32), header || payload)
// (AES-256-GCM over no plaintext, header and payload as additional data),
// seq counting the direction's frames from 0. A frame whose tag does not
// verify ends the connection, so a relay without K_N can neither inject,
// alter, replay, drop-and-reorder nor splice frames between connections.
// GMAC needs a nonce never used twice under one key: each direction has its
// own key, fresh for every connection (both nonces are in T), and seq only
// grows. GMAC rather than HMAC because the tag covers every page written
// back: GHASH (PCLMULQDQ) runs about three times as fast as SHA-256 even
// with the SHA extensions, and a replicated write-back pays it per replica.
//
// Local connections. On a unix socket the kernel already guarantees what
// the tags protect: nobody but the two ends can read, inject into or alter
// the stream, and SO_PEERCRED names the process at the other end. Tags then
// cost only CPU (a GMAC of every page written back, on both sides). So a
// client connected over a unix socket to a server whose uid it trusts (its
// own, or root) may ask for untagged frames: kAuth's payload gets one more
// byte, F = 1. The server grants it (kAuth reply arg1 = G = 1) only if it
// too sees a unix socket and trusts the client's uid (its own, or root).
// When F is sent, the transcript is extended,
//   T' = T || F (u8) || G (u8),
// Pc covers T || F (the client cannot know G yet; the server checks Pc over
// F = 1) and Ps and the frame keys T': a relay can neither ask for untagged
// frames nor turn a refusal into a grant. A relay on a unix socket runs as
// some uid; unless that is the client's own (which could read the client's
// memory anyway) or root, the client sees it and asks for nothing. With
// G = 1 no frame carries a tag; otherwise every frame does, as above.
//
// MACs are compared in constant time.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "remora/protocol.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora::auth {

using Nonce = std::array<std::uint8_t, wire::kNonceLen>;
using Mac = std::array<std::uint8_t, wire::kMacLen>;
using Key = std::array<std::uint8_t, 32>;

// Secret files: the cluster secret or a node key must be at least this long.
constexpr std::size_t kMinSecretLen = 32;

// Fills `out` from the kernel's CSPRNG (via OpenSSL RAND_bytes).
Status RandomBytes(void* out, std::size_t len);
Status NewNonce(Nonce* nonce);
// A processor's incarnation (TransportOptions::incarnation): random and
// never 0. Without randomness it falls back to the clock and the pid, which
// still tell two runs apart.
std::uint64_t NewIncarnation();

// K_N from the cluster secret.
Key DeriveNodeKey(std::string_view cluster_secret, NodeId node);
// The key a client holding `secret` uses as node `node`: `secret` is either a
// cluster secret (K_N is derived) or a node key text (EncodeNodeKey) that
// must be for `node` (kAuthFailed otherwise: it proves no other identity).
Status ClientNodeKey(std::string_view secret, NodeId node, Key* key);
// The text of a node key file: "remora-node-key <node> <64 hex digits>".
std::string EncodeNodeKey(NodeId node, const Key& key);
bool IsNodeKey(std::string_view secret);

struct Transcript {
  std::uint16_t version = wire::kVersion;
  NodeId processor_node = 0;
  NodeId memory_node = 0;
  std::uint64_t incarnation = 0;
  Nonce server_nonce{};
  Nonce client_nonce{};
  // Local connections (above): F and G. Without F the transcript is T.
  bool untagged_requested = false;
  bool untagged_granted = false;
};
// Pc covers T || F (never G).
Mac ClientProof(const Key& key, const Transcript& t);
Mac ServerProof(const Key& key, const Transcript& t);
struct FrameKeys {
  Key client_to_server{};
  Key server_to_client{};
};
FrameKeys DeriveFrameKeys(const Key& key, const Transcript& t);

// The tag of frame number `seq` (header bytes as on the wire, then payload
// pieces). Should the cipher fail, the tag is random: a frame then fails its
// check rather than passing one anybody could compute.
using Tag = std::array<std::uint8_t, wire::kFrameTagLen>;
Tag FrameTag(const Key& key, std::uint64_t seq, const std::uint8_t* header,
             std::span<const iovec> payload);
Tag FrameTag(const Key& key, std::uint64_t seq, const std::uint8_t* header, const void* payload,
             std::size_t len);

// Constant-time comparison (CRYPTO_memcmp): no early exit on the first
// differing byte, so response time does not leak how much of a guess was right.
bool MacEqual(const std::uint8_t* a, const std::uint8_t* b);
bool TagEqual(const std::uint8_t* a, const std::uint8_t* b);  // kFrameTagLen bytes

// Reads a secret file (a cluster secret or a node key): surrounding whitespace
// (a trailing newline) is trimmed. Refused with kInvalidArgument and a
// message saying how to fix it when the file is a symlink or not a regular
// file, is accessible by group or others (must be 0600 or stricter), or the
// secret is shorter than kMinSecretLen.
Status LoadSecretFile(const std::string& path, std::string* secret);
// A fresh secret: 32 random bytes as 64 hex characters.
Status GenerateSecret(std::string* secret);
// Writes `secret` and a newline to `path` with mode 0600, replacing any file
// there (never following a symlink).
Status WriteSecretFile(const std::string& path, const std::string& secret);

}  // namespace remora::auth

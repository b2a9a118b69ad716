// Peer authentication by a shared secret.
//
// Both sides of a connection prove that they know the secret without sending
// it, by MACing a nonce the other side just chose (HMAC-SHA256):
//
//   server -> client   kHello  payload = Ns                      (32 random bytes)
//   client -> server   kAuth   payload = HMAC(K, "remora-c"||Ns) || Nc
//   server -> client   kAuth|reply payload = HMAC(K, "remora-s"||Nc)
//
// The two labels keep a server's proof from being replayed as a client's
// proof. Nonces are fresh per connection, so a recorded exchange is useless on
// the next one. MACs are compared in constant time.
//
// This file only computes and checks proofs and handles secrets; the message
// exchange lives in handshake.h (client) and memory-node/server.cc (server).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "remora/protocol.h"
#include "remora/status.h"

namespace remora::auth {

using Nonce = std::array<std::uint8_t, wire::kNonceLen>;
using Mac = std::array<std::uint8_t, wire::kMacLen>;

// Fills `out` from the kernel's CSPRNG (via OpenSSL RAND_bytes).
Status RandomBytes(void* out, std::size_t len);
Status NewNonce(Nonce* nonce);

// The proof a client sends for the server's nonce, and the one a server sends
// back for the client's nonce.
Mac ClientProof(std::string_view secret, const Nonce& server_nonce);
Mac ServerProof(std::string_view secret, const Nonce& client_nonce);
// Constant-time comparison (CRYPTO_memcmp): no early exit on the first
// differing byte, so response time does not leak how much of a guess was right.
bool MacEqual(const std::uint8_t* a, const std::uint8_t* b);

// Reads a secret file: surrounding whitespace (a trailing newline) is trimmed
// and an empty secret is refused. Warns if the file is readable by others.
Status LoadSecretFile(const std::string& path, std::string* secret);
// A fresh secret: 32 random bytes as 64 hex characters.
Status GenerateSecret(std::string* secret);
// Writes `secret` and a newline to `path` with mode 0600, replacing any file
// there (never following a symlink).
Status WriteSecretFile(const std::string& path, const std::string& secret);

}  // namespace remora::auth

// The client half of the connection handshake (see auth.h for the exchange).
//
// Runs on a freshly connected socket before it is handed to a StreamClient,
// so it may simply block (bounded by a deadline) on the one socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "net/auth.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora::net {

struct HandshakeResult {
  NodeId server_node_id = 0;  // the memory node's own id, from its kHello
  // Keys of every later frame (StreamClient::Options::frame_keys); none
  // when the two agreed on untagged frames over a unix socket (auth.h,
  // "Local connections").
  std::optional<auth::FrameKeys> frame_keys;
};

// Reads the server's kHello, sends kAuth as `node_id` of `incarnation`
// (TransportOptions::incarnation), and checks the server's proof. `secret` is the cluster secret or
// node `node_id`'s key (auth::ClientNodeKey). kAuthFailed if the server refused us or could not
// prove it holds the key; kTimeout / kDisconnected if it did not answer
// properly in time.
Status ClientHandshake(int fd, const std::string& secret, NodeId node_id, std::uint64_t incarnation,
                       int timeout_ms, HandshakeResult* result);

}  // namespace remora::net

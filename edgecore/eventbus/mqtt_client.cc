#include "edgecore/eventbus/mqtt_client.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "common/thread_annotations.h"

namespace ep::edgecore::eventbus {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Status parseMqttServer(const std::string& field, const std::string& server, std::string& host,
                       uint16_t& port, bool* tls) {
  std::string rest = server;
  bool secure = false;
  if (rest.rfind("tcp://", 0) == 0) {
    rest = rest.substr(6);
  } else if (rest.rfind("ssl://", 0) == 0 || rest.rfind("tls://", 0) == 0) {
    rest = rest.substr(6);
    secure = true;
  } else if (rest.rfind("mqtts://", 0) == 0) {
    rest = rest.substr(8);
    secure = true;
  } else if (rest.find("://") != std::string::npos) {
    return invalidError(field + ": \"" + server +
                        "\": the scheme must be tcp:// or ssl:// (also tls://, mqtts://)");
  }
  if (tls != nullptr) *tls = secure;
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return invalidError(field + ": \"" + server + "\" is not tcp://HOST:PORT or ssl://HOST:PORT");
  }
  host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string p = rest.substr(colon + 1);
  int value = 0;
  for (char c : p) {
    if (c < '0' || c > '9' || value > 65535) {
      return invalidError(field + ": port \"" + p + "\" is not a number in 1..65535");
    }
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) {
    return invalidError(field + ": port \"" + p + "\" is not a number in 1..65535");
  }
  port = static_cast<uint16_t>(value);
  return Status::ok();
}

namespace {

struct Outgoing {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  uint16_t packetId = 0;
  bool sent = false;  // sent at least once (a resend sets DUP)
  MqttClient::PublishDone done;
};

}  // namespace

// Everything below runs on the I/O thread unless marked otherwise.
struct MqttClient::Impl : std::enable_shared_from_this<MqttClient::Impl> {
  Impl(MqttClientOptions o, MessageHandler m, ConnectionHandler c)
      : options(std::move(o)),
        onMessage(std::move(m)),
        onConnection(std::move(c)),
        socket(io),
        resolver(io),
        retryTimer(io),
        deadlineTimer(io),
        keepAliveTimer(io),
        reader(options.maxPacketBytes),
        backoff(options.initialBackoff) {}

  const MqttClientOptions options;
  const MessageHandler onMessage;
  const ConnectionHandler onConnection;
  std::string host;
  uint16_t port = 0;

  asio::io_context io;
  tcp::socket socket;
  MqttTlsSessionMaker makeTls;          // null: plaintext
  std::shared_ptr<MqttTlsSession> tls;  // per TLS connection, on `socket`
  tcp::resolver resolver;
  asio::steady_timer retryTimer;
  asio::steady_timer deadlineTimer;   // connect/CONNACK/SUBACK deadline
  asio::steady_timer keepAliveTimer;  // PINGREQ cadence and the broker's liveness
  std::thread thread;

  // I/O thread state.
  mqtt::PacketReader reader;
  std::array<char, 16384> readBuffer{};
  std::deque<std::string> writes;  // encoded packets; the front one is being written
  bool writing = false;
  enum class Phase {
    kIdle,
    kConnecting,
    kAwaitConnack,
    kAwaitSuback,
    kConnected
  } phase = Phase::kIdle;
  uint64_t generation = 0;  // of the current connection attempt
  uint16_t nextPacketId = 1;
  uint16_t subscribeId = 0;
  std::set<std::string> extra;        // wanted extra subscriptions
  std::set<std::string> extraActive;  // extra subscriptions the broker has on this connection
  std::deque<Outgoing> inflight;      // QoS 1, in send order
  std::chrono::milliseconds backoff;
  Clock::time_point lastReceived{}, lastSent{};
  bool stopping = false;
  bool loggedFailure = false;  // the first failure of a streak is a warning, the rest debug

  // Shared with other threads.
  mutable Mutex mu;
  std::deque<Outgoing> queue EP_GUARDED_BY(mu);  // waiting to be sent
  MqttClientStats stats EP_GUARDED_BY(mu);

  uint16_t takePacketId() {
    uint16_t id = nextPacketId++;
    if (nextPacketId == 0) nextPacketId = 1;
    return id;
  }

  void setError(const std::string& e) {
    MutexLock lock(mu);
    stats.lastError = e;
  }

  void connect() {
    if (stopping) return;
    ++generation;
    phase = Phase::kConnecting;
    reader.reset();
    writes.clear();
    writing = false;
    const uint64_t gen = generation;
    armDeadline(gen, options.connectTimeout, "connect timed out");
    resolver.async_resolve(
        host, std::to_string(port),
        [this, gen](boost::system::error_code ec, tcp::resolver::results_type r) {
          if (gen != generation || stopping) return;
          if (ec) return fail(gen, "resolving " + host + ": " + ec.message());
          asio::async_connect(socket, r,
                              [this, gen](boost::system::error_code ec2, const tcp::endpoint&) {
                                if (gen != generation || stopping) return;
                                if (ec2) {
                                  return fail(gen, "connecting to " + host + ":" +
                                                       std::to_string(port) + ": " + ec2.message());
                                }
                                onTcpConnected(gen);
                              });
        });
  }

  void armDeadline(uint64_t gen, std::chrono::milliseconds after, std::string what) {
    deadlineTimer.expires_after(after);
    deadlineTimer.async_wait([this, gen, what](boost::system::error_code ec) {
      if (ec || gen != generation || phase == Phase::kConnected) return;
      fail(gen, what);
    });
  }

  void onTcpConnected(uint64_t gen) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (makeTls) return startTls(gen);
    onTransportReady(gen);
  }

  // The handshake runs under the connect deadline; the broker's certificate is checked against
  // the CA and the server name inside it.
  void startTls(uint64_t gen) {
    tls = makeTls(socket);
    tls->handshake([this, gen](std::string error) {
      if (gen != generation || stopping) return;
      if (!error.empty()) {
        return fail(gen, "TLS handshake with " + host + ":" + std::to_string(port) + ": " + error);
      }
      onTransportReady(gen);
    });
  }

  void onTransportReady(uint64_t gen) {
    phase = Phase::kAwaitConnack;
    lastReceived = lastSent = Clock::now();
    write(mqtt::encodeConnect(options.connect));
    read(gen);
  }

  std::string describe(const boost::system::error_code& ec) const {
    return tls ? tls->describe(ec) : ec.message();
  }

  template <typename Handler>
  void readSome(Handler&& h) {
    if (tls) {
      tls->readSome(readBuffer.data(), readBuffer.size(), std::forward<Handler>(h));
    } else {
      socket.async_read_some(asio::buffer(readBuffer), std::forward<Handler>(h));
    }
  }

  void read(uint64_t gen) {
    readSome([this, gen](boost::system::error_code ec, size_t n) {
      if (gen != generation || stopping) return;
      if (ec) return fail(gen, "connection lost: " + describe(ec));
      lastReceived = Clock::now();
      reader.feed(std::string_view(readBuffer.data(), n));
      while (gen == generation) {
        auto next = reader.next();
        if (!next.isOk()) return fail(gen, next.status().message());
        if (!next->has_value()) break;
        if (!handle(gen, std::move(**next))) return;
      }
      if (gen == generation) read(gen);
    });
  }

  // False when the connection was failed.
  bool handle(uint64_t gen, mqtt::Packet p) {
    using T = mqtt::PacketType;
    switch (p.type) {
      case T::kConnack:
        if (phase != Phase::kAwaitConnack) return fail(gen, "unexpected CONNACK"), false;
        if (p.returnCode != 0) {
          return fail(gen, "broker refused the connection: " + mqtt::connackReason(p.returnCode)),
                 false;
        }
        if (options.subscriptions.empty() && extra.empty()) {
          extraActive.clear();
          onReady(gen);
        } else {
          phase = Phase::kAwaitSuback;
          subscribeId = takePacketId();
          auto all = options.subscriptions;
          for (const auto& f : extra) all.emplace_back(f, 1);
          extraActive = extra;
          write(mqtt::encodeSubscribe(subscribeId, all));
        }
        return true;
      case T::kSuback:
        if (phase == Phase::kConnected) {  // a later change of the extra subscriptions
          for (uint8_t q : p.grantedQos) {
            if (q == 0x80) spdlog::error("eventbus: broker refused a rule topic subscription");
          }
          return true;
        }
        if (phase != Phase::kAwaitSuback || p.packetId != subscribeId) {
          return fail(gen, "unexpected SUBACK"), false;
        }
        for (size_t i = 0; i < p.grantedQos.size() && i < options.subscriptions.size(); ++i) {
          if (p.grantedQos[i] == 0x80) {
            spdlog::error("eventbus: broker refused the subscription to {}",
                          options.subscriptions[i].first);
          }
        }
        onReady(gen);
        return true;
      case T::kPublish: {
        if (phase != Phase::kConnected && phase != Phase::kAwaitSuback) {
          return fail(gen, "PUBLISH before the session was set up"), false;
        }
        if (p.qos > 1) return fail(gen, "QoS 2 PUBLISH on a QoS 1 subscription"), false;
        {
          MutexLock lock(mu);
          ++stats.received;
        }
        if (onMessage) {
          onMessage(InboundMessage{.topic = std::move(p.topic),
                                   .payload = std::move(p.payload),
                                   .qos = p.qos,
                                   .packetId = p.packetId,
                                   .generation = gen});
        }
        return true;
      }
      case T::kPuback: {
        for (auto it = inflight.begin(); it != inflight.end(); ++it) {
          if (it->packetId == p.packetId) {
            auto done = std::move(it->done);
            inflight.erase(it);
            {
              MutexLock lock(mu);
              ++stats.published;
            }
            if (done) done(Status::ok());
            break;
          }
        }
        pump();
        return true;
      }
      case T::kPingresp:
      case T::kUnsuback:
        return true;
      default:
        return fail(gen, "unexpected packet type " + std::to_string(static_cast<int>(p.type))),
               false;
    }
  }

  void onReady(uint64_t gen) {
    phase = Phase::kConnected;
    deadlineTimer.cancel();
    backoff = options.initialBackoff;
    loggedFailure = false;
    {
      MutexLock lock(mu);
      stats.connected = true;
      ++stats.connects;
      stats.lastError.clear();
    }
    spdlog::info("eventbus: connected to mqtt broker {}:{}", host, port);
    // Unacknowledged QoS 1 publishes go again, with DUP, in their order.
    for (auto& o : inflight) {
      write(mqtt::encodePublish(o.topic, o.payload, o.qos, o.packetId, o.retain, o.sent));
      o.sent = true;
    }
    keepAlive(gen);
    if (onConnection) onConnection(true);
    syncExtraSubscriptions();
    pump();
  }

  // Tells the broker how `extra` changed since extraActive (connected only).
  void syncExtraSubscriptions() {
    if (phase != Phase::kConnected) return;
    std::vector<std::pair<std::string, uint8_t>> add;
    std::vector<std::string> remove;
    for (const auto& f : extra) {
      if (extraActive.count(f) == 0) add.emplace_back(f, 1);
    }
    for (const auto& f : extraActive) {
      if (extra.count(f) == 0) remove.push_back(f);
    }
    if (!add.empty()) write(mqtt::encodeSubscribe(takePacketId(), add));
    if (!remove.empty()) write(mqtt::encodeUnsubscribe(takePacketId(), remove));
    extraActive = extra;
  }

  void keepAlive(uint64_t gen) {
    const auto interval = std::chrono::seconds(std::max<int>(1, options.connect.keepAliveSeconds));
    keepAliveTimer.expires_after(std::chrono::milliseconds(500));
    keepAliveTimer.async_wait([this, gen, interval](boost::system::error_code ec) {
      if (ec || gen != generation || phase != Phase::kConnected) return;
      const auto now = Clock::now();
      if (now - lastReceived > interval + interval / 2) {
        return fail(gen, "broker silent for " +
                             std::to_string(options.connect.keepAliveSeconds * 3 / 2) + "s");
      }
      if (now - lastSent >= interval / 2 && writes.empty()) write(mqtt::encodePingreq());
      keepAlive(gen);
    });
  }

  // Moves queued publishes onto the connection while the in-flight window allows.
  void pump() {
    if (phase != Phase::kConnected) return;
    while (inflight.size() < options.maxInflight) {
      Outgoing o;
      {
        MutexLock lock(mu);
        if (queue.empty()) break;
        o = std::move(queue.front());
        queue.pop_front();
        if (o.qos == 0) ++stats.published;
      }
      if (o.qos > 0) o.packetId = takePacketId();
      write(mqtt::encodePublish(o.topic, o.payload, o.qos, o.packetId, o.retain, false));
      if (o.qos > 0) {
        o.sent = true;
        o.payload.shrink_to_fit();
        inflight.push_back(std::move(o));
      } else if (o.done) {
        o.done(Status::ok());
      }
    }
  }

  void write(std::string packet) {
    writes.push_back(std::move(packet));
    if (!writing) writeNext(generation);
  }

  void writeNext(uint64_t gen) {
    if (writes.empty()) {
      writing = false;
      return;
    }
    writing = true;
    lastSent = Clock::now();
    auto done = [this, gen](boost::system::error_code ec, size_t) {
      if (gen != generation || stopping) return;
      if (ec) return fail(gen, "write: " + describe(ec));
      writes.pop_front();
      writeNext(gen);
    };
    if (tls) {
      tls->write(writes.front().data(), writes.front().size(), std::move(done));
    } else {
      asio::async_write(socket, asio::buffer(writes.front()), std::move(done));
    }
  }

  void fail(uint64_t gen, const std::string& why) {
    if (gen != generation || stopping) return;
    const bool wasConnected = phase == Phase::kConnected;
    ++generation;  // callbacks of this connection become no-ops
    phase = Phase::kIdle;
    boost::system::error_code ignored;
    socket.close(ignored);
    tls.reset();
    deadlineTimer.cancel();
    keepAliveTimer.cancel();
    writes.clear();
    writing = false;
    {
      MutexLock lock(mu);
      stats.connected = false;
      stats.lastError = why;
    }
    if (!loggedFailure || wasConnected) {
      spdlog::warn("eventbus: mqtt {}:{}: {}; retrying (backoff from {} ms)", host, port, why,
                   backoff.count());
      loggedFailure = true;
    } else {
      spdlog::debug("eventbus: mqtt {}:{}: {}", host, port, why);
    }
    if (wasConnected && onConnection) onConnection(false);
    thread_local std::mt19937 rng{std::random_device{}()};
    auto delay = backoff + std::chrono::milliseconds(
                               std::uniform_int_distribution<int64_t>(0, backoff.count() / 4)(rng));
    backoff = std::min(options.maxBackoff, backoff * 2);
    retryTimer.expires_after(delay);
    retryTimer.async_wait([this](boost::system::error_code ec) {
      if (!ec && !stopping) connect();
    });
  }
};

MqttClient::MqttClient(MqttClientOptions options, MessageHandler onMessage,
                       ConnectionHandler onConnection)
    : impl_(std::make_shared<Impl>(std::move(options), std::move(onMessage),
                                   std::move(onConnection))) {}

MqttClient::~MqttClient() {
  stop();
}

Status MqttClient::start() {
  if (impl_->thread.joinable()) return Status::ok();
  bool secure = false;
  if (auto s =
          parseMqttServer("mqtt.server", impl_->options.server, impl_->host, impl_->port, &secure);
      !s.isOk()) {
    return s;
  }
  if (secure) {
    if (!impl_->options.tlsFactory) {
      return invalidError("mqtt.server: \"" + impl_->options.server +
                          "\": TLS is not available in this program");
    }
    auto maker = impl_->options.tlsFactory(impl_->options.tls, impl_->host);
    if (!maker) return maker.status();
    impl_->makeTls = std::move(maker).value();
  }
  if (impl_->options.connect.clientId.empty() || impl_->options.connect.clientId.size() > 65535) {
    return invalidError("mqtt.clientId: must be 1..65535 bytes");
  }
  for (const auto& [filter, qos] : impl_->options.subscriptions) {
    if (filter.empty() || qos > 1) return invalidError("mqtt subscription \"" + filter + "\"");
  }
  impl_->io.restart();
  asio::post(impl_->io, [impl = impl_.get()] { impl->connect(); });
  impl_->thread = std::thread([impl = impl_.get()] {
    auto guard = asio::make_work_guard(impl->io);
    impl->io.run();
  });
  return Status::ok();
}

void MqttClient::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    if (impl->phase == Impl::Phase::kConnected) {
      // Best effort: a clean DISCONNECT tells the broker this is no failure.
      boost::system::error_code ignored;
      auto packet = mqtt::encodeDisconnect();
      if (impl->tls) {
        impl->tls->writeNow(packet.data(), packet.size());
      } else {
        asio::write(impl->socket, asio::buffer(packet), ignored);
      }
    }
    impl->stopping = true;
    boost::system::error_code ignored;
    impl->socket.close(ignored);
    impl->tls.reset();
    impl->io.stop();
  });
  impl_->thread.join();
  MutexLock lock(impl_->mu);
  impl_->stats.connected = false;
}

Status MqttClient::setExtraSubscriptions(std::vector<std::string> filters) {
  for (const auto& f : filters) {
    if (f.empty() || f.size() > 65535 || f.find('\0') != std::string::npos) {
      return invalidError("mqtt subscription \"" + f + "\"");
    }
  }
  asio::post(impl_->io, [impl = impl_.get(), filters = std::move(filters)] {
    impl->extra = std::set<std::string>(filters.begin(), filters.end());
    impl->syncExtraSubscriptions();
  });
  return Status::ok();
}

Status MqttClient::publish(std::string topic, std::string payload, uint8_t qos, bool retain,
                           PublishDone done) {
  if (auto s = mqtt::checkTopicName(topic); !s.isOk()) return s;
  if (qos > 1) return invalidError("qos: must be 0 or 1");
  if (topic.size() + payload.size() + 16 > impl_->options.maxPacketBytes) {
    return Status(Code::kTooLarge, "publish to " + topic + ": payload exceeds " +
                                       std::to_string(impl_->options.maxPacketBytes) + " bytes");
  }
  PublishDone droppedDone;
  {
    MutexLock lock(impl_->mu);
    if (impl_->queue.size() >= impl_->options.maxQueued) {
      droppedDone = std::move(impl_->queue.front().done);
      impl_->queue.pop_front();
      ++impl_->stats.dropped;
    }
    impl_->queue.push_back(Outgoing{.topic = std::move(topic),
                                    .payload = std::move(payload),
                                    .qos = qos,
                                    .retain = retain,
                                    .done = std::move(done)});
  }
  if (droppedDone) droppedDone(unavailableError("mqtt publish queue full; message dropped"));
  asio::post(impl_->io, [impl = impl_.get()] { impl->pump(); });
  return Status::ok();
}

void MqttClient::acknowledge(uint64_t generation, uint16_t packetId) {
  asio::post(impl_->io, [impl = impl_.get(), generation, packetId] {
    if (generation != impl->generation || impl->phase == Impl::Phase::kIdle) return;
    impl->write(mqtt::encodePuback(packetId));
  });
}

MqttClientStats MqttClient::stats() const {
  MutexLock lock(impl_->mu);
  return impl_->stats;
}

}  // namespace ep::edgecore::eventbus

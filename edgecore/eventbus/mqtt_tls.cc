#include "edgecore/eventbus/mqtt_tls.h"

// wolfSSL's build options must precede its OpenSSL-compatible headers (Asio's ssl uses them).
#include <wolfssl/options.h>

#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

namespace ep::edgecore::eventbus {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Every pending operation holds the session (shared_from_this): the client drops its reference
// when a connection fails, while the aborted read, write or handshake still has to complete on
// the stream's state.
class WolfsslSession final : public MqttTlsSession,
                             public std::enable_shared_from_this<WolfsslSession> {
 public:
  WolfsslSession(tcp::socket& socket, tlsclient::Config config)
      : config_(std::move(config)), stream_(socket, *config_.context) {}

  void handshake(std::function<void(std::string)> done) override {
    if (auto s = tlsclient::prepareConnection(stream_.native_handle(), config_); !s.isOk()) {
      return done(s.message());
    }
    stream_.async_handshake(
        asio::ssl::stream_base::client,
        [self = shared_from_this(), done = std::move(done)](const boost::system::error_code& ec) {
          tlsclient::releaseHandshakeMemory();
          done(ec ? self->describe(ec) : "");
        });
  }
  void readSome(char* data, size_t size, IoHandler done) override {
    stream_.async_read_some(asio::buffer(data, size),
                            [self = shared_from_this(), done = std::move(done)](
                                const boost::system::error_code& ec, size_t n) { done(ec, n); });
  }
  void write(const char* data, size_t size, IoHandler done) override {
    asio::async_write(stream_, asio::buffer(data, size),
                      [self = shared_from_this(), done = std::move(done)](
                          const boost::system::error_code& ec, size_t n) { done(ec, n); });
  }
  void writeNow(const char* data, size_t size) override {
    boost::system::error_code ignored;
    asio::write(stream_, asio::buffer(data, size), ignored);
  }
  std::string describe(const boost::system::error_code& ec) const override {
    return tlsclient::describeError(
        const_cast<asio::ssl::stream<tcp::socket&>&>(stream_).native_handle(), ec, config_.verify);
  }

 private:
  const tlsclient::Config config_;  // shares the context; before stream_, which uses it
  asio::ssl::stream<tcp::socket&> stream_;
};

}  // namespace

MqttTlsFactory wolfsslMqttTls() {
  return [](const tlsclient::Options& options,
            const std::string& host) -> Result<MqttTlsSessionMaker> {
    tlsclient::Options o = options;
    o.tls13Only = false;  // brokers commonly offer TLS 1.2
    o.alpn.clear();
    auto config = tlsclient::makeConfig(o, host);
    if (!config) return config.status();
    return MqttTlsSessionMaker([c = std::move(config).value()](tcp::socket& socket) {
      return std::shared_ptr<MqttTlsSession>(std::make_shared<WolfsslSession>(socket, c));
    });
  };
}

}  // namespace ep::edgecore::eventbus

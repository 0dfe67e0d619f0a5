#include "common/log.h"

#include <spdlog/sinks/dup_filter_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace ep {

Status setupLogging(const std::string& level, const std::string& component) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return invalidError("logLevel: unknown level \"" + level +
                        "\" (want trace, debug, info, warn, error or off)");
  }
  // Repeated lines are collapsed (issue 14: out of descriptors, one failure logged 21 million
  // times in 22 s): a message identical to the previous one within 10 s is counted, not
  // written, and "Skipped N duplicate messages.." precedes the next line that differs.
  auto dedup = std::make_shared<spdlog::sinks::dup_filter_sink_mt>(std::chrono::seconds(10));
  dedup->add_sink(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>(component, dedup);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %n %v");
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  return Status::ok();
}

}  // namespace ep

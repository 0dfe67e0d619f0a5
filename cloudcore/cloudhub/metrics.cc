#include "cloudcore/cloudhub/metrics.h"

#include <fmt/format.h>

#include "common/thread_annotations.h"

namespace ep::cloudhub {
namespace {

// Label values are node names (DNS-1123) and fixed reasons, but escape anyway.
std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<NodeCounters> Metrics::node(const std::string& name) {
  MutexLock l(mu_);
  auto& c = nodes_[name];
  if (!c) c = std::make_shared<NodeCounters>();
  return c;
}

void Metrics::addRefused(const std::string& reason) {
  MutexLock l(mu_);
  refused_[reason]++;
}

uint64_t Metrics::refused(const std::string& reason) const {
  MutexLock l(mu_);
  auto it = refused_.find(reason);
  return it == refused_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  header("edgeplane_cloudhub_connected_nodes", "gauge", "Edge nodes with an accepted tunnel.");
  out += fmt::format("edgeplane_cloudhub_connected_nodes {}\n", connected_.load());
  std::map<std::string, std::shared_ptr<NodeCounters>> nodes;
  std::map<std::string, uint64_t> refused;
  {
    MutexLock l(mu_);
    nodes = nodes_;
    refused = refused_;
  }
  header("edgeplane_cloudhub_changes_sent_total", "counter", "Object changes queued to a node.");
  for (const auto& [n, c] : nodes) {
    out += fmt::format("edgeplane_cloudhub_changes_sent_total{{node=\"{}\"}} {}\n", escapeLabel(n),
                       c->changesSent.load());
  }
  header("edgeplane_cloudhub_syncs_sent_total", "counter", "Sync messages queued to a node.");
  for (const auto& [n, c] : nodes) {
    out += fmt::format("edgeplane_cloudhub_syncs_sent_total{{node=\"{}\"}} {}\n", escapeLabel(n),
                       c->syncsSent.load());
  }
  header("edgeplane_cloudhub_acked_revision", "gauge", "Last store revision a node acknowledged.");
  for (const auto& [n, c] : nodes) {
    out += fmt::format("edgeplane_cloudhub_acked_revision{{node=\"{}\"}} {}\n", escapeLabel(n),
                       c->ackedRevision.load());
  }
  header("edgeplane_cloudhub_reports_applied_total", "counter", "Edge reports applied.");
  out += fmt::format("edgeplane_cloudhub_reports_applied_total {}\n", reportsApplied_.load());
  header("edgeplane_cloudhub_reports_duplicate_total", "counter",
         "Edge reports acknowledged without applying (sequence already applied).");
  out += fmt::format("edgeplane_cloudhub_reports_duplicate_total {}\n", reportsDuplicate_.load());
  header("edgeplane_cloudhub_reports_rejected_total", "counter",
         "Edge reports refused (invalid payload, not allowed) and acknowledged.");
  out += fmt::format("edgeplane_cloudhub_reports_rejected_total {}\n", reportsRejected_.load());
  header("edgeplane_cloudhub_tls_handshakes_total", "counter",
         "Completed TLS handshakes on the tunnel; resumed=\"true\": a session ticket, no "
         "certificates exchanged.");
  out += fmt::format("edgeplane_cloudhub_tls_handshakes_total{{resumed=\"false\"}} {}\n",
                     tlsFull_.load());
  out += fmt::format("edgeplane_cloudhub_tls_handshakes_total{{resumed=\"true\"}} {}\n",
                     tlsResumed_.load());
  header("edgeplane_cloudhub_refused_total", "counter", "Tunnel streams refused, by reason.");
  for (const auto& [r, n] : refused) {
    out += fmt::format("edgeplane_cloudhub_refused_total{{reason=\"{}\"}} {}\n", escapeLabel(r), n);
  }
  return out;
}

}  // namespace ep::cloudhub

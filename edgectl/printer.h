#pragma once

// Column alignment and kubectl-style table output. Pure functions and a small stateful printer;
// thread-compatible.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ep::edgectl {

// Aligns tab-separated cells like Go's text/tabwriter (flags 0, pad char ' '), which kubectl
// uses: a cell is the text before a '\t'; the text after a line's last tab is not part of a
// column. Consecutive lines that have a cell in column k form a block whose cells are padded
// to max(widest cell + padding, minWidth). A line with fewer cells ends the blocks of the
// columns it lacks. Widths count UTF-8 code points.
std::string formatTabbed(std::string_view text, int minWidth, int padding);

// Number of UTF-8 code points in `s`.
size_t displayWidth(std::string_view s);

// A table as strings, ready to print.
struct TextTable {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};

struct TableOptions {
  bool wide = false;           // -o wide: columns of every priority
  bool withNamespace = false;  // -A: NAMESPACE column first
  bool showLabels = false;     // --show-labels: LABELS column last
  std::string namePrefix;      // "pod/" when several kinds are listed
  bool withEventType = false;  // --output-watch-events: EVENT column first
};

// Converts a metav1 Table ({"columnDefinitions":[...],"rows":[{"cells":[...],"object":...}]})
// into text. Column definitions with priority > 0 are dropped unless wide. Cells: null ->
// "<none>", numbers without a fraction as integers, multi-line strings cut to their first line.
// `eventType` fills the EVENT column when withEventType.
TextTable tableFromServer(const nlohmann::json& table, const TableOptions& options,
                          std::string_view eventType = {});

// Fallback when the server answers with plain objects instead of a Table: NAME and AGE columns.
TextTable tableFromObjects(const std::vector<nlohmann::json>& objects, const TableOptions& options,
                           int64_t nowMillis, std::string_view eventType = {});

// kubectl's "k=v,k2=v2" rendering of metadata.labels; "<none>" when empty.
std::string formatLabels(const nlohmann::json& labels);

// Prints tables with kubectl's table layout: upper-case headers, left-aligned columns padded by
// 3 spaces (minimum column width 6), no padding after the last column. Column widths are
// remembered across calls so watch rows stay aligned with the first table.
class TablePrinter {
 public:
  std::string print(const TextTable& table, bool withHeaders);

 private:
  std::vector<size_t> widths_;
};

// Formats a metav1 Table cell.
std::string formatCell(const nlohmann::json& cell);

}  // namespace ep::edgectl

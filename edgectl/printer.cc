#include "edgectl/printer.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/clock.h"
#include "edgectl/resource_args.h"

namespace ep::edgectl {

using nlohmann::json;

size_t displayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

namespace {

// Go text/tabwriter's column-block algorithm over pre-split lines.
class TabFormatter {
 public:
  TabFormatter(std::vector<std::vector<std::string_view>> lines, int minWidth, int padding)
      : lines_(std::move(lines)), minWidth_(minWidth), padding_(padding) {}

  std::string run() {
    format(0, lines_.size());
    return std::move(out_);
  }

 private:
  void writeLines(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      const auto& line = lines_[i];
      for (size_t j = 0; j < line.size(); ++j) {
        out_ += line[j];
        if (j < widths_.size() && j + 1 < line.size()) {
          size_t w = displayWidth(line[j]);
          if (widths_[j] > w) out_.append(widths_[j] - w, ' ');
        }
      }
      if (i + 1 < lines_.size() || !trailingPartial_) out_ += '\n';
    }
  }

  void format(size_t line0, size_t line1) {
    size_t column = widths_.size();
    for (size_t i = line0; i < line1; ++i) {
      if (column + 1 >= lines_[i].size()) continue;
      // Line i has a cell in `column`: the block of lines that do starts here.
      writeLines(line0, i);
      line0 = i;
      size_t width = static_cast<size_t>(minWidth_);
      for (; i < line1; ++i) {
        if (column + 1 >= lines_[i].size()) break;
        width = std::max(width, displayWidth(lines_[i][column]) + static_cast<size_t>(padding_));
      }
      widths_.push_back(width);
      format(line0, i);
      widths_.pop_back();
      line0 = i;
      // Line i (if any) has no cell in `column`, so the loop may skip it.
    }
    writeLines(line0, line1);
  }

 public:
  bool trailingPartial_ = false;

 private:
  std::vector<std::vector<std::string_view>> lines_;
  int minWidth_;
  int padding_;
  std::vector<size_t> widths_;
  std::string out_;
};

std::string toUpper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string formatTabbed(std::string_view text, int minWidth, int padding) {
  std::vector<std::vector<std::string_view>> lines;
  size_t start = 0;
  bool trailingPartial = !text.empty() && text.back() != '\n';
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
    std::vector<std::string_view> cells;
    size_t cs = 0;
    while (true) {
      size_t tab = line.find('\t', cs);
      if (tab == std::string_view::npos) {
        cells.push_back(line.substr(cs));
        break;
      }
      cells.push_back(line.substr(cs, tab - cs));
      cs = tab + 1;
    }
    lines.push_back(std::move(cells));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  TabFormatter f(std::move(lines), minWidth, padding);
  f.trailingPartial_ = trailingPartial;
  return f.run();
}

std::string formatCell(const json& cell) {
  switch (cell.type()) {
    case json::value_t::null:
      return "<none>";
    case json::value_t::boolean:
      return cell.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(cell.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(cell.get<uint64_t>());
    case json::value_t::number_float: {
      double d = cell.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
        return std::to_string(static_cast<int64_t>(d));
      }
      return cell.dump();
    }
    case json::value_t::string: {
      const auto& s = cell.get_ref<const std::string&>();
      auto nl = s.find('\n');
      return nl == std::string::npos ? s : s.substr(0, nl) + "...";
    }
    default:
      return cell.dump();
  }
}

std::string formatLabels(const json& labels) {
  if (!labels.is_object() || labels.empty()) return "<none>";
  std::string out;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (!out.empty()) out += ',';
    out += it.key() + "=" +
           (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  }
  return out;
}

TextTable tableFromServer(const json& table, const TableOptions& options,
                          std::string_view eventType) {
  TextTable out;
  std::vector<size_t> keep;
  size_t nameColumn = SIZE_MAX;
  if (options.withEventType) out.headers.push_back("EVENT");
  if (options.withNamespace) out.headers.push_back("NAMESPACE");
  const json* defs = jsonAt(table, {"columnDefinitions"});
  if (defs && defs->is_array()) {
    for (size_t i = 0; i < defs->size(); ++i) {
      const json& d = (*defs)[i];
      int priority = d.is_object() && d.contains("priority") && d["priority"].is_number()
                         ? d["priority"].get<int>()
                         : 0;
      if (priority > 0 && !options.wide) continue;
      std::string name = d.is_object() ? d.value("name", "") : "";
      if (nameColumn == SIZE_MAX && toUpper(name) == "NAME") nameColumn = i;
      keep.push_back(i);
      out.headers.push_back(toUpper(name));
    }
  }
  if (options.showLabels) out.headers.push_back("LABELS");
  const json* rows = jsonAt(table, {"rows"});
  if (!rows || !rows->is_array()) return out;
  for (const auto& row : *rows) {
    std::vector<std::string> cells;
    const json* rowCells = jsonAt(row, {"cells"});
    const json* object = jsonAt(row, {"object"});
    static const json kNull;
    if (options.withEventType) cells.emplace_back(eventType);
    if (options.withNamespace) {
      std::string ns = object ? stringAt(*object, {"metadata", "namespace"}) : "";
      cells.push_back(ns);
    }
    for (size_t i : keep) {
      const json& cell =
          rowCells && rowCells->is_array() && i < rowCells->size() ? (*rowCells)[i] : kNull;
      std::string text = formatCell(cell);
      if (i == nameColumn) text = options.namePrefix + text;
      cells.push_back(std::move(text));
    }
    if (options.showLabels) {
      const json* labels = object ? jsonAt(*object, {"metadata", "labels"}) : nullptr;
      cells.push_back(formatLabels(labels ? *labels : kNull));
    }
    out.rows.push_back(std::move(cells));
  }
  return out;
}

TextTable tableFromObjects(const std::vector<json>& objects, const TableOptions& options,
                           int64_t nowMillis, std::string_view eventType) {
  TextTable out;
  if (options.withEventType) out.headers.push_back("EVENT");
  if (options.withNamespace) out.headers.push_back("NAMESPACE");
  out.headers.push_back("NAME");
  out.headers.push_back("AGE");
  if (options.showLabels) out.headers.push_back("LABELS");
  for (const auto& obj : objects) {
    std::vector<std::string> cells;
    if (options.withEventType) cells.emplace_back(eventType);
    if (options.withNamespace) cells.push_back(stringAt(obj, {"metadata", "namespace"}));
    cells.push_back(options.namePrefix + stringAt(obj, {"metadata", "name"}));
    int64_t created = parseRfc3339(stringAt(obj, {"metadata", "creationTimestamp"}));
    cells.push_back(created < 0 ? "<unknown>" : formatAge(nowMillis - created));
    if (options.showLabels) {
      const json* labels = jsonAt(obj, {"metadata", "labels"});
      cells.push_back(formatLabels(labels ? *labels : json()));
    }
    out.rows.push_back(std::move(cells));
  }
  return out;
}

std::string TablePrinter::print(const TextTable& table, bool withHeaders) {
  constexpr size_t kMinWidth = 6;
  constexpr size_t kPadding = 3;
  size_t columns = table.headers.size();
  for (const auto& r : table.rows) columns = std::max(columns, r.size());
  if (widths_.size() < columns) widths_.resize(columns, kMinWidth);
  auto grow = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i + 1 < cells.size(); ++i) {
      widths_[i] = std::max(widths_[i], displayWidth(cells[i]) + kPadding);
    }
  };
  if (withHeaders) grow(table.headers);
  for (const auto& r : table.rows) grow(r);
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out.append(widths_[i] - displayWidth(cells[i]), ' ');
    }
    out += '\n';
  };
  if (withHeaders) emit(table.headers);
  for (const auto& r : table.rows) emit(r);
  return out;
}

}  // namespace ep::edgectl

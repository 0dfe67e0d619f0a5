#include "edgectl/printer.h"

#include <gtest/gtest.h>

namespace ep::edgectl {
namespace {

using nlohmann::json;

TEST(FormatTabbedTest, AlignsColumnsWithPadding) {
  EXPECT_EQ(formatTabbed("a\tbb\tc\naaaa\tb\tc\n", 0, 2), "a     bb  c\naaaa  b   c\n");
  // min width applies to every column cell
  EXPECT_EQ(formatTabbed("a\tb\n", 6, 3), "a     b\n");
}

TEST(FormatTabbedTest, LinesWithoutTabsEndBlocks) {
  std::string in =
      "Name:\tweb\n"
      "Namespace:\tdefault\n"
      "IPs:\n"
      "  IP:\t10.0.0.1\n"
      "Containers:\n"
      "  c:\n"
      "    Image:\tnginx\n"
      "    Restart Count:\t0\n";
  EXPECT_EQ(formatTabbed(in, 0, 2),
            "Name:       web\n"
            "Namespace:  default\n"
            "IPs:\n"
            "  IP:  10.0.0.1\n"
            "Containers:\n"
            "  c:\n"
            "    Image:          nginx\n"
            "    Restart Count:  0\n");
}

TEST(FormatTabbedTest, NestedColumnBlocksLikeGoTabwriter) {
  // Column 1 exists only on the first two lines; column 0 spans all three.
  std::string in = "a\tb\tc\naa\tbbbb\tc\naaa\tx\n";
  EXPECT_EQ(formatTabbed(in, 0, 1), "a   b    c\naa  bbbb c\naaa x\n");
}

TEST(FormatTabbedTest, CountsUtf8CodePoints) {
  EXPECT_EQ(formatTabbed("ü\tx\nab\ty\n", 0, 1), "ü  x\nab y\n");
}

json sampleTable() {
  return json::parse(R"({
    "kind": "Table", "apiVersion": "meta.k8s.io/v1",
    "metadata": {"resourceVersion": "42"},
    "columnDefinitions": [
      {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
      {"name": "Ready", "type": "string", "format": "", "description": "", "priority": 0},
      {"name": "Status", "type": "string", "format": "", "description": "", "priority": 0},
      {"name": "Restarts", "type": "integer", "format": "", "description": "", "priority": 0},
      {"name": "Age", "type": "string", "format": "", "description": "", "priority": 0},
      {"name": "IP", "type": "string", "format": "", "description": "", "priority": 1},
      {"name": "Node", "type": "string", "format": "", "description": "", "priority": 1}
    ],
    "rows": [
      {"cells": ["nginx-7d9f", "1/1", "Running", 0, "5m", "10.1.0.4", "edge-1"],
       "object": {"kind": "PartialObjectMetadata",
                  "metadata": {"name": "nginx-7d9f", "namespace": "default",
                               "labels": {"app": "nginx", "tier": "web"}}}},
      {"cells": ["db", "0/1", "ContainerCreating", 12, "3h", null, "edge-2"],
       "object": {"kind": "PartialObjectMetadata",
                  "metadata": {"name": "db", "namespace": "data"}}}
    ]
  })");
}

TEST(TablePrinterTest, DefaultColumnsLikeKubectl) {
  TablePrinter p;
  EXPECT_EQ(p.print(tableFromServer(sampleTable(), {}), true),
            "NAME         READY   STATUS              RESTARTS   AGE\n"
            "nginx-7d9f   1/1     Running             0          5m\n"
            "db           0/1     ContainerCreating   12         3h\n");
}

TEST(TablePrinterTest, WideNamespaceAndLabels) {
  TableOptions o;
  o.wide = true;
  o.withNamespace = true;
  o.showLabels = true;
  TablePrinter p;
  EXPECT_EQ(p.print(tableFromServer(sampleTable(), o), true),
            "NAMESPACE   NAME         READY   STATUS              RESTARTS   AGE   IP         "
            "NODE     LABELS\n"
            "default     nginx-7d9f   1/1     Running             0          5m    10.1.0.4   "
            "edge-1   app=nginx,tier=web\n"
            "data        db           0/1     ContainerCreating   12         3h    <none>     "
            "edge-2   <none>\n");
}

TEST(TablePrinterTest, NoHeadersAndNamePrefix) {
  TableOptions o;
  o.namePrefix = "pod/";
  TablePrinter p;
  std::string out = p.print(tableFromServer(sampleTable(), o), false);
  EXPECT_EQ(out.substr(0, out.find('\n')), "pod/nginx-7d9f   1/1   Running             0     5m");
}

TEST(TablePrinterTest, WatchRowsKeepWidths) {
  TablePrinter p;
  TextTable first{{"NAME", "STATUS", "AGE"}, {{"a-long-name", "Running", "1s"}}};
  TextTable later{{"NAME", "STATUS", "AGE"}, {{"b", "Done", "2s"}}};
  EXPECT_EQ(p.print(first, true),
            "NAME          STATUS    AGE\n"
            "a-long-name   Running   1s\n");
  EXPECT_EQ(p.print(later, false), "b             Done      2s\n");
}

TEST(TableFromObjectsTest, FallbackNameAndAge) {
  json obj = {{"metadata", {{"name", "x"}, {"creationTimestamp", "2024-01-01T00:00:00Z"}}}};
  int64_t now = 1704067200000 + 90'000;  // 90 s later
  TablePrinter p;
  EXPECT_EQ(p.print(tableFromObjects({obj}, {}, now), true), "NAME   AGE\nx      90s\n");
}

TEST(FormatCellTest, Values) {
  EXPECT_EQ(formatCell(json()), "<none>");
  EXPECT_EQ(formatCell(json(3.0)), "3");
  EXPECT_EQ(formatCell(json(2.5)), "2.5");
  EXPECT_EQ(formatCell(json(true)), "true");
  EXPECT_EQ(formatCell(json("a\nb")), "a...");
  EXPECT_EQ(formatLabels(json::object()), "<none>");
}

}  // namespace
}  // namespace ep::edgectl

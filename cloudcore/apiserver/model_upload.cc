#include "cloudcore/apiserver/model_upload.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/api/kinds.h"
#include "common/api/status_json.h"

namespace ep::apiserver {
namespace {

using Json = nlohmann::json;

http::ServerResponse answer(const std::string& kind, const std::string& digest,
                            const models::UploadState& st) {
  Json body = {{"kind", kind},
               {"apiVersion", kind == "ModelUpload" ? "models.edgeplane.io/v1alpha1"
                                                    : "upgrade.edgeplane.io/v1alpha1"},
               {"digest", digest},
               {"offset", st.offset},
               {"complete", st.complete}};
  if (st.complete) body["size"] = st.offset;
  return api::jsonResponse(200, body);
}

http::ServerResponse serve(models::BlobStore& blobs, const std::string& kind,
                           const std::string& plural, const http::ServerRequest& req) {
  const std::string digest = req.param("digest");
  if (digest.empty()) return api::errorResponse(badRequestError("digest: required"));
  if (req.method == "GET" || req.method == "HEAD") {
    auto st = blobs.uploadState(digest);
    if (!st.isOk()) return api::errorResponse(st.status());
    return answer(kind, digest, *st);
  }
  if (req.method != "PUT") {
    return api::errorResponse(Status(
        Code::kMethodNotAllowed, "the server does not allow this method on " + plural + "/upload"));
  }
  const std::string offsetText = req.param("offset");
  uint64_t offset = 0;
  auto [end, ec] =
      std::from_chars(offsetText.data(), offsetText.data() + offsetText.size(), offset);
  if (offsetText.empty() || ec != std::errc() || end != offsetText.data() + offsetText.size()) {
    return api::errorResponse(badRequestError("offset: must be a non-negative integer"));
  }
  const std::string complete = req.param("complete");
  if (!complete.empty() && complete != "true" && complete != "false") {
    return api::errorResponse(badRequestError("complete: must be true or false"));
  }
  // An empty body still creates the upload (an empty model file) and checks the offset.
  auto appended = blobs.append(digest, offset, req.body);
  if (!appended.isOk()) return api::errorResponse(appended.status());
  models::UploadState st = *appended;
  if (complete == "true" && !st.complete) {
    auto info = blobs.commit(digest);
    if (!info.isOk()) return api::errorResponse(info.status());
    st = {info->size, true};
  }
  return answer(kind, digest, st);
}

}  // namespace

void installModelUpload(ApiHandler& handler, models::BlobStore& blobs) {
  handler.addSubresource(
      "models", "upload",
      [&blobs](http::ServerRequest& req, const std::string&, const std::string&) {
        return serve(blobs, "ModelUpload", "models", req);
      });
  // The same for edgecore binaries (docs/upgrades.md): edgectl upgrade push.
  handler.addSubresource(
      "edgecorereleases", "upload",
      [&blobs](http::ServerRequest& req, const std::string&, const std::string&) {
        return serve(blobs, "EdgecoreUpload", "edgecorereleases", req);
      });
}

}  // namespace ep::apiserver

#pragma once

// The `upload` subresource of sedna.io/v1alpha1 Models: a resumable upload of a model file into
// cloudcore's content-addressed blob store (docs/models.md), which `edgectl model push` uses
// before it points the Model at the new version.
//
//   GET /apis/sedna.io/v1alpha1/namespaces/NS/models/NAME/upload?digest=sha256:HEX
//       where the upload stands: {"kind": "ModelUpload", "digest", "offset", "complete"}
//   PUT .../upload?digest=sha256:HEX&offset=N[&complete=true]   body: the bytes from N on
//       appends the body (application/octet-stream) at N, which must be the upload's offset
//       (409 naming the offset otherwise); with complete=true the whole upload is then verified
//       against the digest and committed (422 "digest mismatch", the upload discarded). Same
//       answer as GET, plus "size" once complete.
//
// The Model need not exist yet (the push creates it afterwards); authorized as get/update on
// models/upload (the edit role has it). The blob is shared by content: uploading bytes that are
// already stored answers complete at once.

#include "cloudcore/apiserver/api_handler.h"
#include "cloudcore/models/blob_store.h"

namespace ep::apiserver {

// The same protocol serves edgecore binaries at
//   /apis/upgrade.edgeplane.io/v1alpha1/edgecorereleases/VERSION/upload
// (docs/upgrades.md; `edgectl upgrade push`), answering kind "EdgecoreUpload"; the release need
// not exist yet either (cluster-admin only: no bootstrap role grants it).
//
// Registers models/upload and edgecorereleases/upload on `handler`; `blobs` must outlive it. Call
// before the server starts.
void installModelUpload(ApiHandler& handler, models::BlobStore& blobs);

}  // namespace ep::apiserver

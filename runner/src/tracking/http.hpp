#pragma once
// A small blocking HTTP client over libcurl, for the MLflow tracking server. libcurl.so.4 is
// loaded when the first client is made (RUNNER_LIBCURL names another file); only its header,
// from Debian's libcurl4-openssl-dev, is needed to build. Credentials and TLS come from
// MLflow's own environment variables, read once: MLFLOW_TRACKING_TOKEN (a bearer token),
// MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (basic auth),
// MLFLOW_TRACKING_SERVER_CERT_PATH (a CA bundle) and MLFLOW_TRACKING_INSECURE_TLS=true (no
// certificate check).
#include <string>

namespace runner::tracking {

struct HttpResponse {
  long status = 0;    ///< the HTTP status, or 0 when no answer came (see error)
  std::string body;   ///< the answer's body
  std::string error;  ///< why no answer came (connection refused, timeout), else empty
  bool ok() const { return status >= 200 && status < 300; }
  /// One line for a log: "HTTP 404: <body>" or the transport error.
  std::string describe() const;
};

class HttpClient {
 public:
  /// `base`: scheme, host and port, e.g. http://127.0.0.1:5000 (no trailing slash).
  explicit HttpClient(std::string base);
  const std::string& base() const { return base_; }
  /// `path` starts with '/'. `content_type` is sent when `body` is not empty.
  HttpResponse request(const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& content_type = "application/json", long timeout_seconds = 30) const;
  /// PUTs a file's bytes, streamed from disk.
  HttpResponse put_file(const std::string& path, const std::string& file, long timeout_seconds = 600) const;
  /// %-escapes a URL path or query part (slashes kept when `keep_slashes`).
  static std::string escape(const std::string& s, bool keep_slashes);

 private:
  std::string base_, token_, user_, password_, ca_path_;
  bool insecure_ = false;
};

}  // namespace runner::tracking

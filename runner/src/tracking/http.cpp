#include "tracking/http.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "runner/error.hpp"

namespace runner::tracking {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

}  // namespace

std::string HttpResponse::describe() const {
  if (status == 0) return error;
  std::string b = body.substr(0, 300);
  for (char& c : b)
    if (c == '\n' || c == '\r') c = ' ';
  return "HTTP " + std::to_string(status) + (b.empty() ? "" : ": " + b);
}

HttpClient::HttpClient(std::string base)
    : base_(std::move(base)),
      token_(env_or_empty("MLFLOW_TRACKING_TOKEN")),
      user_(env_or_empty("MLFLOW_TRACKING_USERNAME")),
      password_(env_or_empty("MLFLOW_TRACKING_PASSWORD")),
      ca_path_(env_or_empty("MLFLOW_TRACKING_SERVER_CERT_PATH")),
      insecure_(env_or_empty("MLFLOW_TRACKING_INSECURE_TLS") == "true") {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::string HttpClient::escape(const std::string& s, bool keep_slashes) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slashes && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

namespace {

// The parts every request shares: URL, credentials, TLS, time limits, the answer's body.
std::unique_ptr<CURL, CurlDeleter> prepare(const std::string& url, const std::string& user, const std::string& password,
                                           const std::string& ca_path, bool insecure, long timeout,
                                           HttpResponse& response) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw Error("MLflow: curl_easy_init failed");
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  if (!user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  if (!ca_path.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca_path.c_str());
  if (insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  return curl;
}

// Fills `response`, whose body the transfer is already writing into (prepare()).
void perform(CURL* c, curl_slist* headers, HttpResponse& response) {
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    response.status = 0;
    response.error = curl_easy_strerror(rc);
    return;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
}

// The request's headers: the bearer token when there is one, then the content type.
std::unique_ptr<curl_slist, ListDeleter> headers_for(const std::string& token, const std::string& content_type) {
  std::unique_ptr<curl_slist, ListDeleter> headers;
  if (!token.empty()) headers.reset(curl_slist_append(headers.release(), ("Authorization: Bearer " + token).c_str()));
  if (!content_type.empty())
    headers.reset(curl_slist_append(headers.release(), ("Content-Type: " + content_type).c_str()));
  return headers;
}

}  // namespace

HttpResponse HttpClient::request(const std::string& method, const std::string& path, const std::string& body,
                                 const std::string& content_type, long timeout_seconds) const {
  HttpResponse response;
  auto curl = prepare(base_ + path, user_, password_, ca_path_, insecure_, timeout_seconds, response);
  const bool get = method == "GET";
  auto headers = headers_for(token_, get ? "" : content_type);
  if (get) {
    curl_easy_setopt(curl.get(), CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  perform(curl.get(), headers.get(), response);
  return response;
}

HttpResponse HttpClient::put_file(const std::string& path, const std::string& file, long timeout_seconds) const {
  HttpResponse response;
  std::unique_ptr<FILE, FileCloser> f(std::fopen(file.c_str(), "rb"));
  if (!f) {
    response.error = file + ": cannot open";
    return response;
  }
  std::fseek(f.get(), 0, SEEK_END);
  const long size = std::ftell(f.get());
  std::fseek(f.get(), 0, SEEK_SET);
  auto curl = prepare(base_ + path, user_, password_, ca_path_, insecure_, timeout_seconds, response);
  auto headers = headers_for(token_, "application/octet-stream");
  curl_easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_READDATA, f.get());
  curl_easy_setopt(curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  perform(curl.get(), headers.get(), response);
  return response;
}

}  // namespace runner::tracking

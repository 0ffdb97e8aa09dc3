#include "tracking/http.hpp"

#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>

#include "runner/error.hpp"

namespace runner::tracking {
namespace {

// libcurl's functions, loaded when the first HttpClient is made: an MLflow tracking server is
// its only user, so runner does not link it (a bundle then carries none of libcurl's TLS,
// Kerberos and LDAP libraries, and a machine without libcurl runs everything else).
struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

CurlApi load_curl() {
  const char* env = std::getenv("RUNNER_LIBCURL");
  const std::string lib = env && *env ? env : "libcurl.so.4";
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  const char* why = h ? nullptr : dlerror();
  CurlApi api{};
  auto sym = [&](auto& fn, const char* name) {
    if (!h) return;
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (!fn && !why) why = dlerror();
  };
  sym(api.global_init, "curl_global_init");
  sym(api.easy_init, "curl_easy_init");
  sym(api.easy_setopt, "curl_easy_setopt");
  sym(api.easy_perform, "curl_easy_perform");
  sym(api.easy_getinfo, "curl_easy_getinfo");
  sym(api.easy_cleanup, "curl_easy_cleanup");
  sym(api.easy_strerror, "curl_easy_strerror");
  sym(api.slist_append, "curl_slist_append");
  sym(api.slist_free_all, "curl_slist_free_all");
  if (why)
    throw Error("the tracking server's client needs libcurl, which could not be loaded (" + std::string(why) +
                "): install libcurl4 (apt install libcurl4) or set RUNNER_LIBCURL to the path of libcurl.so.4");
  api.global_init(CURL_GLOBAL_DEFAULT);
  return api;
}

const CurlApi& lib() {
  static const CurlApi api = load_curl();  // a failed load throws, and the next call tries again
  return api;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { lib().easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { lib().slist_free_all(l); }
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
  try {
    lib();  // loads libcurl (or says why not) before any request
  } catch (const Error& e) {
    throw Error("MLflow server " + base_ + ": " + e.what());
  }
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
  std::unique_ptr<CURL, CurlDeleter> curl(lib().easy_init());
  if (!curl) throw Error("MLflow: curl_easy_init failed");
  CURL* c = curl.get();
  lib().easy_setopt(c, CURLOPT_URL, url.c_str());
  lib().easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  lib().easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  lib().easy_setopt(c, CURLOPT_TIMEOUT, timeout);
  lib().easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  lib().easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  if (!user.empty()) {
    lib().easy_setopt(c, CURLOPT_USERNAME, user.c_str());
    lib().easy_setopt(c, CURLOPT_PASSWORD, password.c_str());
  }
  if (!ca_path.empty()) lib().easy_setopt(c, CURLOPT_CAINFO, ca_path.c_str());
  if (insecure) {
    lib().easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    lib().easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  return curl;
}

// What to do about a TLS failure, after libcurl's own words ("" for other failures).
const char* tls_hint(CURLcode rc) {
  if (rc == CURLE_PEER_FAILED_VERIFICATION)
    return " (the server's certificate could not be verified: set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA "
           "bundle that signed it, or MLFLOW_TRACKING_INSECURE_TLS=true to skip the check)";
  if (rc == CURLE_SSL_CACERT_BADFILE) return " (MLFLOW_TRACKING_SERVER_CERT_PATH must name a readable PEM CA bundle)";
  return "";
}

// Fills `response`, whose body the transfer is already writing into (prepare()). A failed
// transfer's error is libcurl's detailed message ("SSL certificate problem: self-signed
// certificate"), else its code's text.
void perform(CURL* c, curl_slist* headers, HttpResponse& response) {
  char detail[CURL_ERROR_SIZE] = "";
  lib().easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  lib().easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  const CURLcode rc = lib().easy_perform(c);
  lib().easy_setopt(c, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
  if (rc != CURLE_OK) {
    response.status = 0;
    response.error = std::string(*detail ? detail : lib().easy_strerror(rc)) + tls_hint(rc);
    return;
  }
  lib().easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
}

// The request's headers: the bearer token when there is one, then the content type.
std::unique_ptr<curl_slist, ListDeleter> headers_for(const std::string& token, const std::string& content_type) {
  std::unique_ptr<curl_slist, ListDeleter> headers;
  if (!token.empty()) headers.reset(lib().slist_append(headers.release(), ("Authorization: Bearer " + token).c_str()));
  if (!content_type.empty())
    headers.reset(lib().slist_append(headers.release(), ("Content-Type: " + content_type).c_str()));
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
    lib().easy_setopt(curl.get(), CURLOPT_HTTPGET, 1L);
  } else {
    lib().easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
    lib().easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    lib().easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
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
  lib().easy_setopt(curl.get(), CURLOPT_UPLOAD, 1L);
  lib().easy_setopt(curl.get(), CURLOPT_READDATA, f.get());
  lib().easy_setopt(curl.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  perform(curl.get(), headers.get(), response);
  return response;
}

}  // namespace runner::tracking

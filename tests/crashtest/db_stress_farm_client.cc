//  The farm client of db_stress: see db_stress_farm_client.h.

#include "db_stress_tool/db_stress_farm_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "db/compaction/compaction_job.h"
#include "file/file_util.h"
#include "rocksdb/env.h"
#include "rocksdb/sst_file_reader.h"

namespace ROCKSDB_NAMESPACE {
namespace {

struct FarmConfig {
  std::vector<std::string> workers;
  std::string hoster_root;
  std::string log_path;
  std::string instance;
  uint64_t start_time = 0;
  int wait_secs = 120;
};

const FarmConfig& Config() {
  static const FarmConfig config = [] {
    FarmConfig c;
    const char* w = getenv("FARM_WORKERS");
    std::string list = w ? w : "";
    size_t pos = 0;
    while (pos < list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      if (comma > pos) c.workers.push_back(list.substr(pos, comma - pos));
      pos = comma + 1;
    }
    const char* r = getenv("FARM_HOSTER_ROOT");
    c.hoster_root = r ? r : "";
    const char* l = getenv("FARM_CLIENT_LOG");
    c.log_path = l ? l : "";
    const char* s = getenv("FARM_WAIT_SECS");
    if (s && atoi(s) > 0) c.wait_secs = atoi(s);
    // One db_stress process is one run of a hoster: its pid and start time
    // tell it from the runs before it (RocksDB numbers jobs from 1 after
    // every open, so job ids repeat across runs and reopens).
    c.instance = "dbstress-" + std::to_string(getpid());
    c.start_time = static_cast<uint64_t>(time(nullptr));
    return c;
  }();
  return config;
}

std::atomic<uint32_t> next_attempt{0};
std::atomic<uint32_t> next_worker{0};

void Log(const std::string& line) {
  const FarmConfig& c = Config();
  if (c.log_path.empty()) return;
  std::string l = std::to_string(time(nullptr)) + " " + c.instance + " " +
                  line + "\n";
  int fd = open(c.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return;
  ssize_t n = write(fd, l.data(), l.size());
  (void)n;
  close(fd);
}

// ---- base64 ----

const char* kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) |
                 uint8_t(in[i + 2]);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
    i += 3;
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(const std::string& in, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=') break;
    const char* p = strchr(kB64, ch);
    if (ch == 0 || p == nullptr) return false;
    acc = (acc << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(char((acc >> bits) & 0xff));
    }
  }
  return true;
}

// ---- JSON, only as much as the protocol's answers need ----

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (uint8_t(ch) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

// The position just after `"key":` (and blanks), or npos.
size_t FindValue(const std::string& json, const std::string& key) {
  std::string pat = "\"" + key + "\"";
  size_t p = json.find(pat);
  if (p == std::string::npos) return p;
  p += pat.size();
  while (p < json.size() && (json[p] == ' ' || json[p] == ':')) p++;
  return p < json.size() ? p : std::string::npos;
}

std::string JsonString(const std::string& json, const std::string& key) {
  size_t p = FindValue(json, key);
  if (p == std::string::npos || json[p] != '"') return "";
  std::string out;
  for (p++; p < json.size() && json[p] != '"'; p++) {
    if (json[p] == '\\' && p + 1 < json.size()) {
      p++;
      char e = json[p];
      out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
    } else {
      out.push_back(json[p]);
    }
  }
  return out;
}

uint64_t JsonNumber(const std::string& json, const std::string& key) {
  size_t p = FindValue(json, key);
  if (p == std::string::npos) return ~uint64_t{0};
  return strtoull(json.c_str() + p, nullptr, 10);
}

// ---- HTTP/1.1 over loopback TCP, one request per connection ----

struct Answer {
  int code = 0;  // 0: no answer (connection failed or timed out)
  std::string body;
  std::string error;
};

std::string Dechunk(const std::string& body) {
  std::string out;
  size_t p = 0;
  while (p < body.size()) {
    size_t eol = body.find("\r\n", p);
    if (eol == std::string::npos) break;
    size_t len = strtoul(body.c_str() + p, nullptr, 16);
    if (len == 0) break;
    out += body.substr(eol + 2, len);
    p = eol + 2 + len + 2;
  }
  return out;
}

Answer Post(const std::string& hostport, const std::string& path,
            const std::string& body, int timeout_ms) {
  Answer a;
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    a.error = "bad worker address " + hostport;
    return a;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(atoi(hostport.c_str() + colon + 1)));
  if (inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &addr.sin_addr) !=
      1) {
    a.error = "bad worker address " + hostport;
    return a;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    a.error = std::string("socket: ") + strerror(errno);
    return a;
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    a.error = "connect " + hostport + ": " + strerror(errno);
    close(fd);
    return a;
  }
  std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + hostport +
                    "\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) +
                    "\r\nConnection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      a.error = "send to " + hostport + ": " + strerror(errno);
      close(fd);
      return a;
    }
    sent += size_t(n);
  }
  std::string resp;
  char buf[65536];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      a.error = "recv from " + hostport + ": " + strerror(errno);
      close(fd);
      return a;
    }
    resp.append(buf, size_t(n));
  }
  close(fd);
  size_t head_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 9, "HTTP/1.1 ") != 0 || head_end == std::string::npos) {
    a.error = "not an HTTP answer from " + hostport;
    return a;
  }
  a.code = atoi(resp.c_str() + 9);
  std::string head = resp.substr(0, head_end);
  a.body = resp.substr(head_end + 4);
  for (char& ch : head) ch = char(tolower(ch));
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    a.body = Dechunk(a.body);
  }
  return a;
}

// ---- the attempt ----

struct Attempt {
  std::string worker;
  std::string key_json;  // the five fields of the attempt's key
  std::string output_dir;
  uint64_t job_id = 0;
  uint32_t attempt = 0;
  uint64_t start_time = 0;  // of the key: see FarmCompact
};

void RemoveDir(const std::string& dir) {
  DestroyDir(Env::Default(), dir).PermitUncheckedError();
}

void Cancel(const Attempt& at) {
  Post(at.worker, "/shutdown", "{" + at.key_json + "}", 5000);
}

// The output checks of farm/src/hoster/verify.rs, then output_path set to
// the directory the outputs are in.
Status VerifyResult(const std::string& raw, const std::string& output_dir,
                    std::string* result) {
  CompactionServiceResult res;
  Status s = CompactionServiceResult::Read(raw, &res);
  if (!s.ok()) return Status::Corruption("farm: result unreadable", s.ToString());
  if (!res.status.ok()) {
    return Status::Aborted("farm: remote status", res.status.ToString());
  }
  for (const auto& f : res.output_files) {
    const std::string& n = f.file_name;
    if (n.empty() || n.find('/') != std::string::npos || n == "." ||
        n == "..") {
      return Status::Corruption("farm: output file name not plain", n);
    }
    std::string path = output_dir + "/" + n;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Status::IOError("farm: output missing or not a file", path);
    }
    if (uint64_t(st.st_size) != f.file_size) {
      return Status::Corruption("farm: output size differs from the result",
                                path);
    }
    Options options;
    SstFileReader reader(options);
    s = reader.Open(path);
    if (s.ok()) s = reader.VerifyChecksum();
    if (!s.ok()) {
      return Status::Corruption("farm: output fails verification",
                                path + ": " + s.ToString());
    }
  }
  res.output_path = output_dir;
  return res.Write(result);
}

// The result a worker left beside the outputs (rpc.results), when its
// compact.done names this attempt.
bool FinishedOnDisk(const Attempt& at, std::string* raw) {
  std::string marker;
  if (!ReadFileToString(Env::Default(), at.output_dir + "/compact.done",
                        &marker)
           .ok()) {
    return false;
  }
  if (JsonString(marker, "instance_name") != Config().instance ||
      JsonNumber(marker, "job_id") != at.job_id ||
      JsonNumber(marker, "attempt") != at.attempt ||
      JsonNumber(marker, "start_time") != at.start_time) {
    return false;
  }
  return ReadFileToString(Env::Default(), at.output_dir + "/rpc.results", raw)
      .ok();
}

Status Install(const Attempt& at, const std::string& raw, std::string* result,
               const char* how) {
  Status s = VerifyResult(raw, at.output_dir, result);
  if (!s.ok()) {
    Log(at.worker + " job=" + std::to_string(at.job_id) +
        " local verify_failed " + s.ToString());
    RemoveDir(at.output_dir);
    return s;
  }
  Log(at.worker + " job=" + std::to_string(at.job_id) + " remote " + how);
  return Status::OK();
}

Status GiveUp(const Attempt& at, const std::string& reason,
              const std::string& detail, bool cancel) {
  if (cancel) Cancel(at);
  RemoveDir(at.output_dir);
  Log(at.worker + " job=" + std::to_string(at.job_id) + " local " + reason +
      " " + detail);
  return Status::Aborted("farm: " + reason, detail);
}

Status WaitFor(const Attempt& at, std::string* result,
               const std::function<bool()>& should_stop) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(Config().wait_secs);
  const std::string probe = "{" + at.key_json + ",\"wait_ms\":1000}";
  // A worker that does not answer (stopped, killed, restarting) is given
  // this long before the attempt is given up.
  const auto unreachable_limit = std::chrono::seconds(20);
  auto unreachable_since = Clock::time_point::max();
  while (true) {
    if (should_stop()) return GiveUp(at, "stopping", "db_stress stops", true);
    if (Clock::now() >= deadline) {
      return GiveUp(at, "timeout", std::to_string(Config().wait_secs) + "s",
                    true);
    }
    Answer a = Post(at.worker, "/probe", probe, 5000);
    if (a.code == 200) {
      unreachable_since = Clock::time_point::max();
      std::string status = JsonString(a.body, "status");
      if (status == "queued" || status == "running") continue;
      if (status == "done") {
        std::string raw;
        if (!Base64Decode(JsonString(a.body, "result"), &raw) || raw.empty()) {
          return GiveUp(at, "protocol", "done without a base64 result", false);
        }
        return Install(at, raw, result, "probed");
      }
      if (status == "failed") {
        return GiveUp(at, "remote_failed:" + JsonString(a.body, "outcome"),
                      JsonString(a.body, "error"), false);
      }
      return GiveUp(at, "protocol", "unknown probe status " + status, true);
    }
    // The worker died right after finishing: its result is on disk.
    std::string raw;
    if (FinishedOnDisk(at, &raw)) return Install(at, raw, result, "on_disk");
    if (a.code == 404) {
      return GiveUp(at, "not_found", "the worker no longer knows the attempt",
                    false);
    }
    if (a.code != 0) {
      return GiveUp(at, "protocol",
                    "probe answered " + std::to_string(a.code) + " " + a.body,
                    true);
    }
    auto now = Clock::now();
    if (unreachable_since == Clock::time_point::max()) unreachable_since = now;
    if (now - unreachable_since > unreachable_limit) {
      return GiveUp(at, "unreachable", a.error, true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

bool FarmEnabled() { return !Config().workers.empty(); }

Status FarmCompact(const CompactionServiceJobInfo& info,
                   const std::string& input, const std::string& output_dir,
                   std::string* result,
                   const std::function<bool()>& should_stop) {
  const FarmConfig& c = Config();
  const std::string input_b64 = Base64Encode(input);
  std::string last = "no worker";
  const size_t n = c.workers.size();
  const uint32_t first = next_worker.fetch_add(1);
  for (size_t i = 0; i < n; i++) {
    Attempt at;
    at.worker = c.workers[(first + i) % n];
    at.job_id = info.job_id;
    // Keys never repeat in this process, across jobs and across reopens
    // (which start RocksDB's job ids again): `seq` counts every attempt. The
    // protocol bounds `attempt` to 0..=1000 (a hoster retries a job a few
    // times), so every 1001 attempts the key's start_time moves on a second.
    const uint32_t seq = next_attempt.fetch_add(1);
    at.attempt = seq % 1001;
    at.start_time = c.start_time + seq / 1001;
    at.output_dir = output_dir + "-att-" + std::to_string(seq);
    at.key_json = "\"instance_name\":\"" + JsonEscape(c.instance) +
                  "\",\"start_time\":" + std::to_string(at.start_time) +
                  ",\"dbname\":\"" + JsonEscape(info.db_name) +
                  "\",\"job_id\":" + std::to_string(info.job_id) +
                  ",\"attempt\":" + std::to_string(at.attempt);
    std::string job = "{" + at.key_json + ",\"hoster_root\":\"" +
                      JsonEscape(c.hoster_root) +
                      "\",\"code_version\":\"db_stress\",\"protocol\":1" +
                      ",\"cf_name\":\"" + JsonEscape(info.cf_name) +
                      "\",\"output_level\":" +
                      std::to_string(info.output_level) +
                      ",\"estimate_time_us\":0,\"output_dir\":\"" +
                      JsonEscape(at.output_dir) +
                      "\",\"compaction_service_input\":\"" + input_b64 + "\"}";
    Answer a = Post(at.worker, "/dcompact", job, 30000);
    if (a.code == 200) return WaitFor(at, result, should_stop);
    if (a.code == 0) {
      // No answer: the worker may still admit it; cancel, as the hoster does.
      Cancel(at);
      last = "unreachable " + a.error;
    } else {
      last = std::to_string(a.code) + " " + JsonString(a.body, "status") +
             ": " + JsonString(a.body, "error");
      if (a.code == 503) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  Log("- job=" + std::to_string(info.job_id) + " local submit_failed " + last);
  return Status::Aborted("farm: no worker took the job", last);
}

}  // namespace ROCKSDB_NAMESPACE

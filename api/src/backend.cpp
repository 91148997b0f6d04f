// Choosing backends: the registry of kinds, the spec parser, the process default and thread scopes.
#include "anysock/backend.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

namespace anysock {
namespace detail {
// Defined in stack/: every backend kind compiled into the library.
std::vector<std::pair<std::string, backend_factory>> builtin_backends();
}  // namespace detail

namespace {

struct registry {
  std::mutex mutex;
  std::map<std::string, backend_factory, std::less<>> kinds;
  std::shared_ptr<backend> process_default;  // null until first use or set_default_backend
};

registry& the_registry() {
  static registry* r = [] {
    auto* reg = new registry;  // never destroyed: sockets may outlive static destruction order
    for (auto& [kind, factory] : detail::builtin_backends()) reg->kinds[kind] = factory;
    return reg;
  }();
  return *r;
}

thread_local backend* scoped_backend = nullptr;

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '+' || c == '.';
}

}  // namespace

std::shared_ptr<backend> backend::share() {
  if (auto self = weak_from_this().lock()) return self;
  return std::shared_ptr<backend>(std::shared_ptr<backend>{}, this);  // not owned: non-owning
}

backend_spec parse_backend_spec(std::string_view spec) {
  backend_spec out;
  size_t colon = spec.find(':');
  out.kind = std::string(spec.substr(0, colon));
  if (out.kind.empty()) {
    throw std::invalid_argument("backend spec '" + std::string(spec) + "': missing backend kind");
  }
  for (char c : out.kind) {
    if (!is_key_char(c)) {
      throw std::invalid_argument("backend spec '" + std::string(spec) + "': bad kind '" +
                                  out.kind + "'");
    }
  }
  if (colon == std::string_view::npos) return out;
  std::string_view rest = spec.substr(colon + 1);
  size_t i = 0;
  while (true) {
    size_t eq = rest.find('=', i);
    size_t comma = rest.find(',', i);
    if (eq == std::string_view::npos || (comma != std::string_view::npos && comma < eq)) {
      std::string part(rest.substr(i, comma == std::string_view::npos ? rest.npos : comma - i));
      throw std::invalid_argument("backend spec '" + std::string(spec) + "': '" + part +
                                  "' is not key=value");
    }
    std::string key(rest.substr(i, eq - i));
    if (key.empty() || !std::all_of(key.begin(), key.end(), is_key_char)) {
      throw std::invalid_argument("backend spec '" + std::string(spec) + "': bad key '" + key +
                                  "'");
    }
    for (const auto& [k, v] : out.params) {
      if (k == key) {
        throw std::invalid_argument("backend spec '" + std::string(spec) + "': key '" + key +
                                    "' given twice");
      }
    }
    std::string value;
    i = eq + 1;
    if (i < rest.size() && rest[i] == '\'') {
      size_t close = rest.find('\'', i + 1);
      if (close == std::string_view::npos) {
        throw std::invalid_argument("backend spec '" + std::string(spec) +
                                    "': unterminated quote in '" + key + "'");
      }
      value = std::string(rest.substr(i + 1, close - i - 1));
      i = close + 1;
      if (i < rest.size() && rest[i] != ',') {
        throw std::invalid_argument("backend spec '" + std::string(spec) +
                                    "': text after quoted value of '" + key + "'");
      }
    } else {
      size_t end = rest.find(',', i);
      value = std::string(rest.substr(i, end == std::string_view::npos ? rest.npos : end - i));
      // ':' needs no quotes after the kind (ip6=fd00::2/64 reads as written); a quote inside an
      // unquoted value is a mistake.
      if (value.find('\'') != std::string::npos) {
        throw std::invalid_argument("backend spec '" + std::string(spec) + "': value of '" + key +
                                    "' contains a quote; put the whole value in single quotes");
      }
      i = end == std::string_view::npos ? rest.size() : end;
    }
    out.params.emplace_back(std::move(key), std::move(value));
    if (i >= rest.size()) break;
    ++i;  // skip ','
    if (i >= rest.size()) {
      throw std::invalid_argument("backend spec '" + std::string(spec) + "': trailing ','");
    }
  }
  return out;
}

void register_backend_kind(std::string kind, backend_factory factory) {
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.kinds[std::move(kind)] = factory;
}

std::shared_ptr<backend> make_backend(std::string_view spec) {
  backend_spec parsed = parse_backend_spec(spec);
  registry& r = the_registry();
  backend_factory factory = nullptr;
  {
    std::lock_guard lock(r.mutex);
    auto it = r.kinds.find(parsed.kind);
    if (it == r.kinds.end()) {
      std::string known;
      for (const auto& [name, f] : r.kinds) known += (known.empty() ? "" : ", ") + name;
      throw std::invalid_argument("backend spec '" + std::string(spec) + "': unknown kind '" +
                                  parsed.kind + "' (known: " + known + ")");
    }
    factory = it->second;
  }
  return factory(parsed);
}

backend& default_backend() {
  if (scoped_backend != nullptr) return *scoped_backend;
  registry& r = the_registry();
  {
    std::lock_guard lock(r.mutex);
    if (r.process_default) return *r.process_default;
  }
  // secure_getenv: a set-uid, set-gid or capability-raising program ignores the variable (and uses
  // the kernel), so whoever starts it cannot point its sockets at a network of their choosing.
  const char* env = ::secure_getenv("ANYSOCK_BACKEND");
  std::shared_ptr<backend> made = (env == nullptr || *env == '\0')
                                      ? kernel_backend().share()
                                      : make_backend(env);  // throws for a bad spec
  std::lock_guard lock(r.mutex);
  if (!r.process_default) r.process_default = std::move(made);
  return *r.process_default;
}

void set_default_backend(backend& b) {
  auto shared = b.share();
  registry& r = the_registry();
  std::lock_guard lock(r.mutex);
  r.process_default = std::move(shared);
}

backend_scope::backend_scope(backend& b) : backend_(b.share()), previous_(scoped_backend) {
  scoped_backend = backend_.get();
}

backend_scope::~backend_scope() { scoped_backend = previous_; }

namespace detail {
// For the simulator's fibers (stack/lwip/sim_world.cpp): each task keeps its own scope.
backend* exchange_scoped_backend(backend* b) noexcept { return std::exchange(scoped_backend, b); }
}  // namespace detail

}  // namespace anysock

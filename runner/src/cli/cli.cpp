#include "cli/cli.hpp"

#include <boost/program_options.hpp>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>

#include "config/config.hpp"
#include "device/cuda.hpp"
#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "cli/eval.hpp"
#include "cli/predict.hpp"
#include "cli/sample.hpp"
#include "cli/scaffold.hpp"
#include "cli/sweep.hpp"
#include "dist/sync.hpp"
#include "engine/trainer.hpp"
#include "logging/log.hpp"
#include "registry/registry.hpp"
#include "runner/error.hpp"
#include "tracking/compare.hpp"
#include "util/strings.hpp"

namespace po = boost::program_options;

namespace runner::cli {
namespace {

struct Options {
  std::string command;
  std::vector<std::string> args;  ///< positional arguments after the command
  std::vector<std::string> plugin_paths;
  std::vector<std::string> params;
  std::string kind;                     ///< new-plugin --kind
  std::string dir;                      ///< new-plugin --dir
  std::string output = "compare.html";  ///< compare --output
  bool output_given = false;            ///< --output on the command line (predict needs it)
  std::string input;                    ///< predict --input
  std::string split = "val";            ///< eval --split
  std::string device;                   ///< eval, predict, sample --device ("": the run's)
  SampleRequest sample;                 ///< sample's options
  std::string command_line;             ///< argv, shell-quoted
  bool multirun = false;                ///< -m: a sweep
  log::Verbosity verbosity = log::Verbosity::Normal;
};

struct Command {
  const char* name;
  const char* usage;
  const char* help;
  std::function<int(const Options&)> run;
};

int cmd_run(const Options& o);
int cmd_plugins(const Options& o);
int cmd_describe(const Options& o);
int cmd_print_config(const Options& o);
int cmd_version(const Options& o);
int cmd_new_plugin(const Options& o);
int cmd_help(const Options& o);
int cmd_compare(const Options& o);
int cmd_sample(const Options& o);
int cmd_predict(const Options& o);
int cmd_eval(const Options& o);

// The one table of subcommands; `runner --help` prints it.
const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"run", "run CONFIG [key.path=value ...]", "train as CONFIG says (the default command)", cmd_run},
      {"plugins", "plugins", "list every component by kind, with its library", cmd_plugins},
      {"describe", "describe KIND/NAME", "print a component's parameters (e.g. describe optimizer/sgd)", cmd_describe},
      {"print-config", "print-config CONFIG [key.path=value ...]", "print the resolved config with defaults filled in",
       cmd_print_config},
      {"new-plugin", "new-plugin NAME --kind KIND [--dir DIR]",
       "write a ready-to-build plugin project (KIND: model, dataflow, optimizer, criterion, scheduler, metric, "
       "handler)",
       cmd_new_plugin},
      {"compare", "compare RUN_DIR RUN_DIR ... [-o FILE]",
       "table of the runs' differing config keys and final/best metrics; writes compare.html (curves)", cmd_compare},
      {"sample", "sample RUN_DIR [--prompt TEXT] [--tokens N] [--checkpoint best|last|FILE]",
       "print text from a trained language model (--temperature, --top-k, --seed, --device)", cmd_sample},
      {"eval", "eval RUN_DIR [--checkpoint best|last|FILE] [--split val|train] [--device D]",
       "evaluate saved weights with the run's metrics (the best model by default)", cmd_eval},
      {"predict", "predict RUN_DIR --input X.npy --output Y.npy [--checkpoint best|last|FILE] [--device D]",
       "write a trained model's float32 outputs (logits) for the inputs in X.npy", cmd_predict},
      {"version", "version", "print versions of the runner, LibTorch and the plugin API", cmd_version},
      {"help", "help", "print this help", cmd_help},
  };
  return table;
}

po::options_description option_table() {
  po::options_description d("options");
  d.add_options()("help,h", "print this help")("plugin-path", po::value<std::vector<std::string>>()->composing(),
                                               "extra plugin library or folder (repeatable)")(
      "params", po::value<std::vector<std::string>>()->composing(), "overrides as \"a=1;b.c=2\" (repeatable)")(
      "kind", po::value<std::string>(), "new-plugin: the component kind to scaffold")(
      "dir", po::value<std::string>(), "new-plugin: where to write the project (default ./NAME)")(
      "output,o", po::value<std::string>(), "compare: the HTML file to write (default compare.html)")(
      "input", po::value<std::string>(), "predict: the .npy array of inputs [N, ...]")(
      "split", po::value<std::string>(), "eval: val (default) or train")(
      "device", po::value<std::string>(),
      "eval, predict, sample: auto, cpu or cuda (default: the run's device:, the CPU where it used a GPU and none is "
      "usable)")("prompt", po::value<std::string>(), "sample: the text to continue")(
      "tokens", po::value<int64_t>(), "sample: tokens to generate (default 200)")(
      "checkpoint", po::value<std::string>(),
      "sample, predict, eval: best (default), last, or a weights/checkpoint/.safetensors file")(
      "temperature", po::value<double>(), "sample: softmax temperature (default 0.8; 0: most likely token)")(
      "top-k", po::value<int64_t>(), "sample: draw from the k most likely tokens only (default 0: all)")(
      "seed", po::value<uint64_t>(), "sample: random seed (default 0)")(
      "multirun,m", "run: a sweep over comma-separated override values (a=1,2 b=x,y: 4 runs, one after another)")(
      "quiet,q", "console shows warnings and errors only (run.log keeps everything)")(
      "verbose,v", "console shows debug messages too");
  return d;
}

int cmd_help(const Options&) {
  std::cout << "runner " << version() << ": a training runner for LibTorch\n\nusage: runner COMMAND [ARGS] [options]\n"
            << "       runner CONFIG [key.path=value ...]   (same as: runner run CONFIG ...)\n\ncommands:\n";
  for (const auto& c : commands()) {
    std::string u = c.usage;
    u.resize(std::max<size_t>(u.size(), 42), ' ');
    std::cout << "  " << u << " " << c.help << "\n";
  }
  std::cout << "\n"
            << option_table() << "\nplugins are searched in: the built-in folder (" << Registry::builtin_dir()
            << "), `plugins:` in the config, --plugin-path, then $RUNNER_PLUGIN_PATH (':'-separated).\n"
            << "exit codes: 0 success, 1 failure during a run, 2 bad input (usage, config, plugins),\n"
            << "3 a collective timed out (dist.timeout), 75 stopped by a signal after a checkpoint (resume it).\n"
            << "Under mpirun, every rank runs the same command.\n";
  return 0;
}

int cmd_new_plugin(const Options& o) {
  if (o.args.size() != 1) throw ConfigError("usage: runner new-plugin NAME --kind KIND [--dir DIR]");
  const std::string& name = o.args[0];
  const std::string dir = write_plugin_scaffold(name, o.kind, o.dir);
  std::cout << "wrote " << dir << "/: CMakeLists.txt, " << name << ".cpp (" << o.kind << " '" << name << "'), " << name
            << ".yaml, README.md\nnext:\n  cd " << dir << "\n  cmake -S . -B build && cmake --build build\n"
            << "  runner plugins --plugin-path build\n  runner " << name << ".yaml\n";
  return 0;
}

int cmd_compare(const Options& o) {
  tracking::compare_runs(o.args, o.output, std::cout);
  return 0;
}

int cmd_version(const Options&) {
  std::cout << "runner " << version() << "\nLibTorch " << TORCH_VERSION << "\nplugin API " << RUNNER_PLUGIN_API_VERSION
            << "\nCUDA: " << device::describe(device::cuda_status())
            << "\ndist backends: " << join(available_backends()) << "\n";
  return 0;
}

// Built-in folder, then the config's `plugins:`, then --plugin-path, then $RUNNER_PLUGIN_PATH.
void load_plugins(Registry& registry, const std::vector<std::string>& from_config, const Options& o) {
  const std::string builtin = Registry::builtin_dir();
  std::error_code ec;
  if (std::filesystem::is_directory(builtin, ec)) registry.load(builtin, "built-in plugin folder");
  for (const auto& p : from_config) registry.load(p, "plugins: in the config");
  for (const auto& p : o.plugin_paths) registry.load(p, "--plugin-path");
  if (const char* env = std::getenv("RUNNER_PLUGIN_PATH")) {
    std::stringstream ss(env);
    for (std::string p; std::getline(ss, p, ':');)
      if (!p.empty()) registry.load(p, "RUNNER_PLUGIN_PATH");
  }
}

std::vector<std::string> overrides_of(const Options& o, size_t first) {
  std::vector<std::string> out(o.args.begin() + static_cast<long>(first), o.args.end());
  for (const auto& p : o.params)
    for (auto& a : config::split_params(p)) out.push_back(a);
  return out;
}

RunConfig load_run_config(const Options& o, Registry& registry, const char* cmd) {
  if (o.args.empty()) throw ConfigError(std::string("usage: runner ") + cmd + " CONFIG [key.path=value ...]");
  const std::string& path = o.args[0];
  config::Node root = load_config(path, overrides_of(o, 1));
  load_plugins(registry, config_plugin_paths(root), o);
  RunConfig rc = resolve_config(std::move(root), path, registry);
  rc.overrides = overrides_of(o, 1);
  rc.command_line = o.command_line;
  return rc;
}

int cmd_print_config(const Options& o) {
  Registry registry;
  RunConfig rc = load_run_config(o, registry, "print-config");
  std::cout << config::emit(rc.tree);
  return 0;
}

// The config a run folder was trained with, its plugins loaded (sample, predict).
RunConfig load_run_folder_config(const std::string& run_dir, const Options& o, Registry& registry,
                                 const std::string& cmd) {
  const std::string config_path = run_dir + "/config.yaml";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(config_path, ec))
    throw ConfigError(cmd + ": " + run_dir + " is not a run folder (no config.yaml)");
  log::init(0, log::Verbosity::Quiet);
  config::Node root = load_config(config_path, {});
  load_plugins(registry, config_plugin_paths(root), o);
  return resolve_config(std::move(root), config_path, registry);
}

int cmd_predict(const Options& o) {
  if (o.args.size() != 1 || o.input.empty() || !o.output_given)
    throw ConfigError(
        "usage: runner predict RUN_DIR --input X.npy --output Y.npy [--checkpoint best|last|FILE] [--device D]");
  PredictRequest request;
  request.run_dir = o.args[0];
  request.input = o.input;
  request.output = o.output;
  request.checkpoint = o.sample.checkpoint;
  request.device = o.device;
  Registry registry;
  const RunConfig rc = load_run_folder_config(request.run_dir, o, registry, "predict");
  predict(request, rc, registry, std::cerr);
  return 0;
}

int cmd_eval(const Options& o) {
  if (o.args.size() != 1)
    throw ConfigError("usage: runner eval RUN_DIR [--checkpoint best|last|FILE] [--split val|train] [--device D]");
  EvalRequest request{o.args[0], o.sample.checkpoint, o.split, o.device};
  Registry registry;
  const RunConfig rc = load_run_folder_config(request.run_dir, o, registry, "eval");
  DistContext dist;
  evaluate_run(request, rc, registry, std::cout);
  return 0;
}

int cmd_sample(const Options& o) {
  if (o.args.size() != 1)
    throw ConfigError(
        "usage: runner sample RUN_DIR [--prompt TEXT] [--tokens N] [--checkpoint best|last|FILE] "
        "[--temperature T] [--top-k K] [--seed S] [--device D]");
  SampleRequest request = o.sample;
  request.run_dir = o.args[0];
  request.device = o.device;
  if (request.tokens < 0) throw ConfigError("sample: --tokens must be >= 0");
  if (request.top_k < 0) throw ConfigError("sample: --top-k must be >= 0");
  if (!(request.temperature >= 0)) throw ConfigError("sample: --temperature must be >= 0");
  Registry registry;
  const RunConfig rc = load_run_folder_config(request.run_dir, o, registry, "sample");
  sample_text(request, rc, registry, std::cout);
  return 0;
}

// Every rank runs this. Failures every rank sees (bad config, missing data) are agreed
// on by a collective and reported once by rank 0; a failure on some ranks only, in the
// middle of training, is logged with its rank and ends the job with MPI_Abort.
int cmd_sweep(const Options& o) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "TORCHELASTIC_RUN_ID"})
    if (std::getenv(v))
      throw ConfigError("sweep: -m starts its runs one after another itself; start it without mpirun/srun/torchrun");
  if (o.args.empty()) throw ConfigError("usage: runner CONFIG -m key=v1,v2 [key=v3,v4 ...]");
  SweepPlan plan;
  plan.config_path = o.args[0];
  plan.points = sweep_grid(overrides_of(o, 1));
  if (plan.points.size() < 2)
    throw ConfigError("sweep: -m needs an override with comma-separated values, e.g. optimizer.lr=0.1,0.05");
  Registry registry;
  for (size_t i = 0; i < plan.points.size(); ++i) {  // every point validates before the first run starts
    try {
      config::Node root = load_config(plan.config_path, plan.points[i]);
      if (i == 0) load_plugins(registry, config_plugin_paths(root), o);
      const RunConfig rc = resolve_config(std::move(root), plan.config_path, registry);
      if (i == 0) plan.runs_root = (std::filesystem::path(rc.run.output_path) / rc.name).string();
    } catch (const ConfigError& e) {
      throw ConfigError("sweep run " + std::to_string(i + 1) + ": " + first_line(e.what()));
    }
  }
  for (const auto& p : o.plugin_paths) plan.extra_args.insert(plan.extra_args.end(), {"--plugin-path", p});
  if (o.verbosity == log::Verbosity::Quiet) plan.extra_args.push_back("-q");
  if (o.verbosity == log::Verbosity::Verbose) plan.extra_args.push_back("-v");
  return run_sweep(plan, std::cout);
}

int cmd_run(const Options& o) {
  if (o.multirun) return cmd_sweep(o);
  DistContext dist;
  log::init(dist.info().rank, o.verbosity);
  try {
    // Host values go over the launch's own channel (MPI, or Gloo under torchrun); tensors
    // over the backend the config and the device ask for, which may be the same one.
    auto host = make_communicator(dist.info(), CommOptions{"auto", 300, false, "", -1});
    Communicator* comm = host.get();
    std::unique_ptr<Communicator> tensors;
    Registry registry;
    RunConfig rc;
    collectively(*comm, [&] { rc = load_run_config(o, registry, "run"); });
    device::Placement placement;  // this rank's device, then the backend that suits it
    collectively(*comm, [&] {
      placement = device::place(rc.step.device, dist.info().local_rank, dist.info().local_size,
                                rc.tree.find("device")->loc.str());
      const CommOptions wanted{rc.dist.backend,          rc.dist.timeout,
                               placement.is_cuda(),      rc.tree.find("dist")->find("backend")->loc.str(),
                               placement.device.index(), host.get()};
      if (resolve_backend(dist.info(), wanted) != host->backend()) {
        tensors = make_communicator(dist.info(), wanted);
        comm = tensors.get();
      }
      host->set_timeout(rc.dist.timeout);
      comm->set_timeout(rc.dist.timeout);
    });
    check_same_config(*comm, rc.tree);
    train(rc, registry, *comm, placement);
    return 0;
  } catch (const Stopped&) {
    return kExitStopped;
  } catch (const AgreedFailure& f) {
    if (f.report) {
      log::to_file("error: " + f.message);
      std::cerr << "error: " << f.message << std::endl;
    }
    return f.code;
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (dist.info().world_size > 1) {  // a failure of this rank alone: end every rank now
      log::error(what);
      dist.abort_all(dynamic_cast<const ConfigError*>(&e) ? 2 : 1);
    }
    log::to_file("error: " + what);
    throw;
  }
}

int cmd_plugins(const Options& o) {
  Registry registry;
  load_plugins(registry, {}, o);
  for (int k = 0; k < kNumKinds; ++k) {
    const Kind kind = static_cast<Kind>(k);
    std::cout << kind_name(kind) << ":\n";
    for (const Component* c : registry.components(kind)) {
      std::string n = c->name;
      n.resize(std::max<size_t>(n.size(), 18), ' ');
      std::cout << "  " << n << " " << c->doc << "\n";
    }
  }
  std::cout << "libraries:\n";
  for (const auto& l : registry.libraries()) std::cout << "  " << l << "\n";
  return 0;
}

int cmd_describe(const Options& o) {
  if (o.args.size() != 1) throw ConfigError("usage: runner describe KIND/NAME (e.g. runner describe optimizer/sgd)");
  const std::string& what = o.args[0];
  const auto slash = what.find('/');
  std::vector<std::string> kinds;
  for (int k = 0; k < kNumKinds; ++k) kinds.push_back(kind_name(static_cast<Kind>(k)));
  if (slash == std::string::npos)
    throw ConfigError("describe: expected KIND/NAME (KIND is one of " + join(kinds) + "), got '" + what + "'");
  const std::string kind_s = what.substr(0, slash), name = what.substr(slash + 1);
  auto kit = std::find(kinds.begin(), kinds.end(), kind_s);
  if (kit == kinds.end())
    throw ConfigError("describe: unknown kind '" + kind_s + "'" + did_you_mean(kind_s, kinds) +
                      " (known: " + join(kinds) + ")");
  const Kind kind = static_cast<Kind>(kit - kinds.begin());
  Registry registry;
  load_plugins(registry, {}, o);
  const Component* c = registry.find(kind, name);
  if (!c)
    throw ConfigError("describe: unknown " + kind_s + " '" + name + "'" + did_you_mean(name, registry.names(kind)) +
                      " (known: " + join(registry.names(kind)) + ")");
  std::cout << kind_s << "/" << c->name << ": " << c->doc << "\nlibrary: " << registry.library_of(c)
            << "\nparameters:\n";
  if (c->schema.params().empty()) std::cout << "  (none)\n";
  for (const ParamSpec& p : c->schema.params()) {
    std::string def;
    if (p.is_required)
      def = "required";
    else if (p.default_value.IsDefined() && !p.default_value.IsNull()) {
      YAML::Emitter e;
      e << YAML::Flow << p.default_value;
      def = std::string("default ") + e.c_str();
    } else
      def = "default null";
    std::string range;
    if (p.min_value) {
      std::ostringstream ss;
      ss << (p.min_exclusive ? "> " : ">= ") << *p.min_value;
      range = ss.str();
    }
    if (p.max_value) {
      std::ostringstream ss;
      ss << (range.empty() ? "" : ", ") << "<= " << *p.max_value;
      range += ss.str();
    }
    if (!p.choices.empty()) range = "one of " + join(p.choices, "|");
    char line[512];
    std::snprintf(line, sizeof line, "  %-20s %-7s %-22s %s%s\n", p.name.c_str(), param_type_name(p.type), def.c_str(),
                  p.help.c_str(), range.empty() ? "" : (" [" + range + "]").c_str());
    std::cout << line;
  }
  return 0;
}

// argv as one line a shell reads back: arguments quoted where they need it.
std::string shell_quoted(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    const bool plain = !a.empty() && a.find_first_not_of(
                                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-+=.,/:@%~") == std::string::npos;
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += (i ? " " : "") + (plain ? a : quoted + "'");
  }
  return line;
}

// The options' values (everything but the positional arguments).
Options options_from(const po::variables_map& vm) {
  Options o;
  if (vm.count("plugin-path")) o.plugin_paths = vm["plugin-path"].as<std::vector<std::string>>();
  if (vm.count("params")) o.params = vm["params"].as<std::vector<std::string>>();
  if (vm.count("kind")) o.kind = vm["kind"].as<std::string>();
  if (vm.count("dir")) o.dir = vm["dir"].as<std::string>();
  if (vm.count("output")) o.output = vm["output"].as<std::string>(), o.output_given = true;
  if (vm.count("input")) o.input = vm["input"].as<std::string>();
  if (vm.count("split")) o.split = vm["split"].as<std::string>();
  if (vm.count("device")) o.device = vm["device"].as<std::string>();
  if (vm.count("prompt")) o.sample.prompt = vm["prompt"].as<std::string>();
  if (vm.count("tokens")) o.sample.tokens = vm["tokens"].as<int64_t>();
  if (vm.count("checkpoint")) o.sample.checkpoint = vm["checkpoint"].as<std::string>();
  if (vm.count("temperature")) o.sample.temperature = vm["temperature"].as<double>();
  if (vm.count("top-k")) o.sample.top_k = vm["top-k"].as<int64_t>();
  if (vm.count("seed")) o.sample.seed = vm["seed"].as<uint64_t>();
  if (vm.count("multirun")) o.multirun = true;
  if (vm.count("quiet")) o.verbosity = log::Verbosity::Quiet;
  if (vm.count("verbose")) o.verbosity = log::Verbosity::Verbose;
  return o;
}

Options parse(int argc, char** argv) {
  po::options_description all = option_table();
  all.add_options()("args", po::value<std::vector<std::string>>(), "positional");
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    std::vector<std::string> names;
    const po::options_description table = option_table();
    for (const auto& opt : table.options()) names.push_back("--" + opt->long_name());
    const std::string name = e.get_option_name();
    if (name.find('.') != std::string::npos || name.find('=') != std::string::npos)  // --trainer.lr=0.1 (Lightning)
      throw ConfigError(std::string(e.what()) + ": config overrides take no dashes: write " +
                        name.substr(name.find_first_not_of('-')) + " (e.g. runner CONFIG optimizer.lr=0.1)");
    throw ConfigError(std::string(e.what()) + did_you_mean(name, names) + " (see runner --help)");
  } catch (const po::error& e) {
    throw ConfigError(std::string(e.what()) + " (see runner --help)");
  }
  Options o = options_from(vm);
  std::vector<std::string> args;
  if (vm.count("args")) args = vm["args"].as<std::vector<std::string>>();
  if (vm.count("help")) {
    o.command = "help";
    return o;
  }
  if (args.empty()) throw ConfigError("no config given: usage: runner CONFIG [key.path=value ...] (see runner --help)");
  bool known = false;
  for (const auto& c : commands()) known = known || args[0] == c.name;
  if (known) {
    o.command = args[0];
    o.args.assign(args.begin() + 1, args.end());
  } else {
    std::error_code ec;
    const bool looks_like_path =
        args[0].find_first_of("./") != std::string::npos || std::filesystem::exists(args[0], ec);
    if (!looks_like_path) {
      std::vector<std::string> names;
      for (const auto& c : commands()) names.push_back(c.name);
      throw ConfigError("unknown command '" + args[0] + "'" + did_you_mean(args[0], names) +
                        " (commands: " + join(names) + "; or give a config file path)");
    }
    o.command = "run";  // `runner CONFIG ...`
    o.args = args;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    o.command_line = shell_quoted(argc, argv);
    if (!o.device.empty() && o.command != "eval" && o.command != "predict" && o.command != "sample")
      throw ConfigError("--device is for eval, predict and sample; a run takes its device from the config: device=" +
                        o.device + " (or device: in the file)");
    for (const auto& c : commands())
      if (o.command == c.name) return c.run(o);
    return 2;
  } catch (const ConfigError& e) {
    std::cerr << "error: " << first_line(e.what()) << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << first_line(e.what()) << std::endl;
    return 1;
  }
}

}  // namespace runner::cli

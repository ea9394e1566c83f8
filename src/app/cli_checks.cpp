// Checks and helpers of the command line (see cli_checks.hpp).
#include "cli_checks.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

#include "underspec/run/run.hpp"

namespace underspec::cli {

// An empty argument, typically an unset shell variable (`--out "$DIR"`), would otherwise mean
// the default (runs/<stamp>, the built-in experiment, no JSON): refuse it, naming the option.
// No description, so that --help stays as it was.
namespace {
CLI::Validator non_empty(const std::string& what) {
  return CLI::Validator([what](std::string& text) { return text.empty() ? "empty " + what : std::string(); }, "");
}
}  // namespace
const CLI::Validator kNonEmptyPath = non_empty("path");
const CLI::Validator kNonEmptyValue = non_empty("value");

// `text` with control characters written as C escapes, to quote it on one line.
namespace {
std::string escaped(const std::string& text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (u < 0x20 || u == 0x7f)
      out += "\\x" + std::string(1, "0123456789abcdef"[u >> 4]) + "0123456789abcdef"[u & 15];
    else
      out += c;
  }
  return out;
}
}  // namespace

// How sbatch splits an #SBATCH line's text into arguments (Slurm's _get_argument): blanks
// separate them except inside '...' or "...", a backslash escapes the next character, and an
// unescaped, unquoted '#' starts a comment. Returns the number of arguments; `comment` tells
// whether a '#' cut the text short.
namespace {
int sbatch_argument_count(const std::string& text, bool& comment) {
  int count = 0;
  bool in_argument = false, escape = false;
  char quote = '\0';
  comment = false;
  for (const char c : text) {
    if (escape) {
      escape = false;
    } else if (quote != '\0') {
      if (c == quote) quote = '\0';
    } else if (c == '\\') {
      escape = true;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      comment = true;
      break;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      in_argument = false;
      continue;
    }
    if (!in_argument) ++count;
    in_argument = true;
  }
  return count;
}
}  // namespace

// Why an --sbatch-arg may not set `option` (its name without dashes or value: "array", "J"),
// or "" when it may: the scripts set it themselves, or a dedicated option does it.
namespace {
std::string set_by_underspec(const std::string& option) {
  static const std::pair<const char*, const char*> kOwn[] = {
      {"array", "the array is the shards: use --shards, --array-limit"},
      {"a", "the array is the shards: use --shards, --array-limit"},
      {"dependency", "`underspec submit` sets the merge's dependencies"},
      {"d", "`underspec submit` sets the merge's dependencies"},
      {"job-name", "use --job-name"},
      {"J", "use --job-name"},
      {"output", "the logs are DIR/logs/shard-<i>.out, .err"},
      {"o", "the logs are DIR/logs/shard-<i>.out, .err"},
      {"error", "the logs are DIR/logs/shard-<i>.out, .err"},
      {"e", "the logs are DIR/logs/shard-<i>.out, .err"},
      {"open-mode", "the logs are appended to across restarts"},
      {"signal", "the tasks' SIGTERM before the time limit is set from --time"},
      {"requeue", "the array is requeueable: that is how preempted tasks resume"},
      {"no-requeue", "the array is requeueable: that is how preempted tasks resume"},
      {"kill-on-invalid-dep", "the merge job sets it"},
      {"partition", "use --partition"},
      {"p", "use --partition"},
      {"time", "use --time"},
      {"t", "use --time"},
      {"account", "use --account"},
      {"A", "use --account"},
      {"qos", "use --qos"},
      {"q", "use --qos"},
      {"mem", "use --mem"},
      {"cpus-per-task", "use --cpus-per-task"},
      {"c", "use --cpus-per-task"},
      {"gpus-per-task", "use --gpus-per-task"},
  };
  // sbatch (getopt_long) takes an unambiguous abbreviation for the long option: `--no-req` is
  // --no-requeue. An ambiguous one sbatch refuses anyway; --gpus is an option of its own.
  const auto abbreviates = [&option](std::string_view name) {
    return option.size() >= 2 && option != "gpus" && name.starts_with(option);
  };
  for (const auto& [name, why] : kOwn)
    if (option == name || abbreviates(name)) return why;
  return "";
}

// "--array=0-3" -> "array"; "-J" / "-Jname" -> "J".
std::string sbatch_option_name(const std::string& text) {
  if (text.starts_with("--"))
    return text.substr(2, text.find('=') == std::string::npos ? std::string::npos : text.find('=') - 2);
  return text.size() > 1 ? text.substr(1, 1) : "";
}
}  // namespace

// A value that `slurm` writes into an #SBATCH line as it is: not empty (it would be dropped
// silently), no newline or other control character (`--time $'1:00\n#SBATCH --x'` would add a
// line of its own), no unescaped '#' (sbatch reads the rest of the line as a comment). `word`:
// one plain word (a partition, time, account, qos, memory or job name): no blank, quote or
// backslash. `option`: one whole sbatch option, so it starts with '-' (`#SBATCH #x` or
// `#SBATCH x` is no option) and is one argument to sbatch: a blank only inside quotes.
CLI::Validator sbatch_text(SbatchText kind) {
  return CLI::Validator(
      [kind](std::string& text) -> std::string {
        const std::string quoted = "'" + escaped(text) + "'";
        if (text.empty()) return "empty value";
        if (std::any_of(text.begin(), text.end(), [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); }))
          return quoted + " contains a newline or another control character (it would break the #SBATCH line)";
        if (kind == SbatchText::word) {
          if (text.find(' ') != std::string::npos)
            return quoted + " contains a space (it would start another sbatch option)";
          if (text.find_first_of("#\"'\\") != std::string::npos)
            return quoted + " contains '#', a quote or a backslash (sbatch would read it as a comment or quoting)";
          return std::string();
        }
        if (text[0] != '-') return quoted + " is not an sbatch option (it must start with '-', e.g. --constraint=a100)";
        bool comment = false;
        const int arguments = sbatch_argument_count(text, comment);
        if (comment) return quoted + " contains '#', which starts a comment in an #SBATCH line (escape it: \\#)";
        if (arguments != 1)
          return quoted + " is " + std::to_string(arguments) +
                 " words to sbatch (quote a value with blanks, e.g. --comment=\"my sweep\")";
        if (const std::string why = set_by_underspec(sbatch_option_name(text)); !why.empty())
          return quoted + " sets an option the scripts set themselves (" + why + ")";
        return std::string();
      },
      "");
}

// `--out=` with nothing after '=': CLI11 would take the next argument as the value, even an
// option (`--sbatch-arg= --time=1:00` gives --sbatch-arg the text "--time=1:00"). Passed on as
// `--out ""`, the empty value meets the option's validators instead.
std::vector<std::string> with_empty_values_split(const CLI::App& app, int argc, char** argv) {
  const auto takes_value = [&app](const std::string& name) {
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      if (const CLI::Option* o = sub->get_option_no_throw(name); o && o->get_items_expected_max() > 0) return true;
    return false;
  };
  std::vector<std::string> args;
  bool options_end = false;  // after `--`, everything is an argument
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    options_end = options_end || a == "--";
    if (i > 0 && !options_end && a.starts_with("--") && a.find('=') == a.size() - 1 &&
        takes_value(a.substr(0, a.size() - 1))) {
      args.push_back(a.substr(0, a.size() - 1));
      args.emplace_back();
    } else {
      args.push_back(a);
    }
  }
  return args;
}

// --threads: 0 (all hardware threads) up to kMaxThreadsFactor times the hardware threads, so
// that a typo cannot ask the OS for 70000 threads.

int parse_threads(const std::string& text) {
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int max = kMaxThreadsFactor * hardware;
  errno = 0;
  char* end = nullptr;
  const long value = text.empty() ? -1 : std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || value < 0 || value > max)
    throw UsageError("--threads: must be in [0, " + std::to_string(max) + "] (0 = all " + std::to_string(hardware) +
                     " hardware thread" + (hardware == 1 ? "" : "s") + ", at most " +
                     std::to_string(kMaxThreadsFactor) + "x), got '" + text + "'");
  return static_cast<int>(value);
}

void require_threads(int threads, int extra) {
  std::vector<std::thread> started;
  std::string problem;
  for (int i = 0; i < extra && problem.empty(); ++i) {
    try {
      started.emplace_back([] {});
    } catch (const std::system_error& e) {
      problem = e.code().message();
    }
  }
  for (std::thread& t : started) t.join();
  if (!problem.empty())
    throw std::runtime_error("cannot start " + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s") + " (" +
                             problem + "; is the limit on processes, ulimit -u, reached?): use fewer --threads");
}

// Checks an integer option's text before CLI11 converts it: an integer in [min, INT_MAX], with
// a message that says so (CLI11's own say "Could not convert" or print DBL_MAX in full).
// Described in --help as CLI11's NonNegativeNumber / PositiveNumber are.
CLI::Validator integer_at_least(int min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        long long value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, ec] = std::from_chars(text.data(), end, value);
        const bool huge = ec == std::errc::result_out_of_range && text[0] != '-';
        if (stop != end || (ec != std::errc() && !huge) || (!huge && value < min))
          return "must be an integer >= " + std::to_string(min) + ", got '" + text + "'";
        if (huge || value > std::numeric_limits<int>::max())
          return "must be at most " + std::to_string(std::numeric_limits<int>::max()) + ", got '" + text + "'";
        return std::string();
      },
      min == 0   ? "NONNEGATIVE"
      : min == 1 ? "POSITIVE"
                 : ">= " + std::to_string(min));
}

// CLI11's parse errors in the documented format, one `underspec: error: ...` line. CLI11 says
// "A subcommand is required" even when one was given but is unknown: name it instead.
std::string parse_failure(const CLI::App* app, const CLI::Error& e) {
  std::string message = e.what();
  if (e.get_name() == "RequiredError" && app->get_subcommands().empty()) {
    std::string names;
    const auto subcommands = app->get_subcommands([](const CLI::App*) { return true; });
    for (std::size_t i = 0; i < subcommands.size(); ++i)
      names += (i == 0 ? "" : i + 1 == subcommands.size() ? " or " : ", ") + subcommands[i]->get_name();
    const std::vector<std::string> rest = app->remaining();
    if (rest.empty())
      message = "a subcommand is required: " + names;
    else if (rest.front().starts_with("-"))
      message = "unknown option " + rest.front() + "; a subcommand comes first: " + names;
    else
      message = "unknown subcommand '" + rest.front() + "' (expected " + names + ")";
  }
  // "The following argument was not expected": lower case, as the rest of our messages.
  if (message.size() > 1 && std::isupper(static_cast<unsigned char>(message[0])) &&
      std::islower(static_cast<unsigned char>(message[1])))
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  return "underspec: error: " + message + "\n";
}

}  // namespace underspec::cli

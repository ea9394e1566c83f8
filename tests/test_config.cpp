// Config parsing: every kind of bad input is a ConfigError naming the key and file:line:col;
// the resolved config written back parses to the same config, exactly.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "temp_dir.hpp"
#include "underspec/config/config_io.hpp"

namespace underspec {
namespace {

namespace fs = std::filesystem;

void expect_same(const ExperimentConfig& a, const ExperimentConfig& b) {
  EXPECT_EQ(a.data.n_train, b.data.n_train);
  EXPECT_EQ(a.data.n_test, b.data.n_test);
  EXPECT_EQ(a.data.coefficients, b.data.coefficients);
  EXPECT_EQ(a.data.intercept, b.data.intercept);
  EXPECT_EQ(a.data.noise_std, b.data.noise_std);
  EXPECT_EQ(a.data.train_factor, b.data.train_factor);
  EXPECT_EQ(a.data.iid_factor, b.data.iid_factor);
  EXPECT_EQ(a.data.ood_factor, b.data.ood_factor);
  EXPECT_EQ(a.data.seed, b.data.seed);
  EXPECT_EQ(a.data.per_replica, b.data.per_replica);
  EXPECT_EQ(a.data.stress_factors, b.data.stress_factors);
  EXPECT_EQ(a.train.epochs, b.train.epochs);
  EXPECT_EQ(a.train.batch_size, b.train.batch_size);
  EXPECT_EQ(a.train.lr, b.train.lr);
  EXPECT_EQ(a.train.betas, b.train.betas);
  EXPECT_EQ(a.train.eps, b.train.eps);
  EXPECT_EQ(a.train.step_size, b.train.step_size);
  EXPECT_EQ(a.train.gamma, b.train.gamma);
  EXPECT_EQ(a.sweep.seeds, b.sweep.seeds);
  EXPECT_EQ(a.sweep.models, b.sweep.models);
  EXPECT_EQ(a.sweep.regimes, b.sweep.regimes);
  EXPECT_EQ(a.sweep.seed, b.sweep.seed);
  EXPECT_EQ(a.sweep.seeds_per_model, b.sweep.seeds_per_model);
  ASSERT_EQ(a.sweep.grid.size(), b.sweep.grid.size());
  for (std::size_t i = 0; i < a.sweep.grid.size(); ++i) {
    EXPECT_EQ(a.sweep.grid[i].key, b.sweep.grid[i].key);
    EXPECT_EQ(a.sweep.grid[i].values, b.sweep.grid[i].values);
  }
  EXPECT_EQ(a.mlp.hidden, b.mlp.hidden);
  EXPECT_EQ(a.domain_randomization.factor_range, b.domain_randomization.factor_range);
  EXPECT_EQ(a.augmentation.noise_std, b.augmentation.noise_std);
}

class ConfigFile : public TempDirTest {
 protected:
  fs::path write(const std::string& text) {
    const fs::path path = dir_ / "c.toml";
    std::ofstream(path) << text;
    return path;
  }
  // The message of the ConfigError that loading `text` throws ("" if none).
  std::string error_of(const std::string& text) {
    try {
      load_config(write(text));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  // Expects an error at `line:col` of the file that names `key`.
  void expect_error(const std::string& text, const std::string& key, int line, int col) {
    const std::string message = error_of(text);
    const std::string where = (dir_ / "c.toml").string() + ":" + std::to_string(line) + ":" + std::to_string(col) + ":";
    EXPECT_EQ(message.rfind(where, 0), 0u) << "message: " << message << "\nexpected to start with: " << where;
    EXPECT_NE(message.find(key), std::string::npos) << "message: " << message << "\nexpected key: " << key;
  }
};

// Seeds are sweep.seed, sweep.seed + 1, ...: past 2^32 - 1 they would wrap to 0, 1, ... and
// repeat the replicas of a sweep started there.
TEST_F(ConfigFile, SeedsRunningPastTheLargestAreRefused) {
  const auto resolved_error = [&](const std::string& text) -> std::string {
    try {
      resolve_config(write(text), {});
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(resolved_error("[sweep]\nseed = 4294967291\nseeds = 5\n"), "");  // the last is 2^32 - 1
  const std::string message = resolved_error("[sweep]\nseed = 4294967292\nseeds = 5\n");
  EXPECT_NE(message.find("sweep.seed = 4294967292 with 5 seeds runs past the largest seed"), std::string::npos)
      << message;
  EXPECT_NE(resolved_error("[sweep]\nseed = 4294967292\nseeds = 4\n[sweep.seeds_per_model]\nmlp = 5\n"), "");
  // The message starts where sweep.seed was set: its line and column, or the --set.
  EXPECT_EQ(message.rfind((dir_ / "c.toml").string() + ":2:8: sweep.seed = 4294967292", 0), 0u) << message;
  try {
    resolve_config(write("[sweep]\nseeds = 5\n"), {"sweep.seed=4294967292"});
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--set sweep.seed=4294967292: sweep.seed = 4294967292 with 5 seeds", 0), 0u)
        << e.what();
  }
  // With data.per_replica (or an axis of it) the last seed may not be 2^32 - 1: a replica's
  // own training set is slot seed + 1, which would wrap to the shared one.
  const std::string last = "[sweep]\nseed = 4294967291\nseeds = 5\n";
  const std::string wraps = resolved_error(last + "[data]\nper_replica = true\n");
  EXPECT_EQ(wraps.rfind((dir_ / "c.toml").string() + ":2:8: sweep.seed = 4294967291 with 5 seeds reaches seed "
                                                     "4294967295",
                        0),
            0u)
      << wraps;
  EXPECT_NE(resolved_error(last + "[sweep.grid]\n\"data.per_replica\" = [true, false]\n"), "");
  EXPECT_EQ(resolved_error("[sweep]\nseed = 4294967290\nseeds = 5\n[data]\nper_replica = true\n"), "");
}

// -0 is 0: one value, so one canonical text (a resume or merge with 0.0 is the same config)
// and a grid cannot hold both.
TEST_F(ConfigFile, NegativeZeroIsZero) {
  const ExperimentConfig c = resolve_config("", {"data.noise_std=-0.0"});
  EXPECT_FALSE(std::signbit(c.data.noise_std));
  EXPECT_EQ(config_hash(c), config_hash(resolve_config("", {"data.noise_std=0.0"})));
  EXPECT_THROW(resolve_config("", {"sweep.grid.\"data.noise_std\"=[0.0, -0.0]"}), ConfigError);
}

TEST_F(ConfigFile, EmptyFileGivesTheDefaults) { expect_same(load_config(write("")), ExperimentConfig{}); }

TEST_F(ConfigFile, ReadsEveryKey) {
  const ExperimentConfig c = load_config(write(R"(
[data]
n_train = 100
n_test = 2147483647
coefficients = [-1, 0.5]
intercept = -2.5
noise_std = 0
train_factor = 0.3
iid_factor = 0.4
ood_factor = 0.05
seed = 4294967295
per_replica = true
[train]
epochs = 3
batch_size = 7
lr = 1
betas = [0, 0.5]
eps = 1e-6
step_size = 2
gamma = 0.25
[sweep]
seeds = 4
models = ["mlp"]
regimes = ["augmentation", "baseline"]
seed = 17
[model.mlp]
hidden = [8, 16, 4]
[regime.domain_randomization]
factor_range = [0.1, 0.1]
[regime.augmentation]
noise_std = 2
)"));
  EXPECT_EQ(c.data.n_train, 100);
  EXPECT_EQ(c.data.n_test, 2147483647);
  EXPECT_EQ(c.data.coefficients, (std::array<double, 2>{-1.0, 0.5}));
  EXPECT_EQ(c.data.intercept, -2.5);
  EXPECT_EQ(c.data.noise_std, 0.0);
  EXPECT_EQ(c.data.ood_factor, 0.05);
  EXPECT_EQ(c.data.seed, 4294967295u);
  EXPECT_TRUE(c.data.per_replica);
  EXPECT_EQ(c.train.lr, 1.0);  // an integer where a float is expected
  EXPECT_EQ(c.train.betas, (std::array<double, 2>{0.0, 0.5}));
  EXPECT_EQ(c.train.gamma, 0.25);
  EXPECT_EQ(c.sweep.models, std::vector<ModelKind>{ModelKind::mlp});
  EXPECT_EQ(c.sweep.regimes, (std::vector<Regime>{Regime::augmentation, Regime::baseline}));
  EXPECT_EQ(c.sweep.seed, 17u);
  EXPECT_EQ(c.mlp.hidden, (std::vector<int>{8, 16, 4}));
  EXPECT_EQ(c.domain_randomization.factor_range, (std::array<double, 2>{0.1, 0.1}));
  EXPECT_EQ(c.augmentation.noise_std, 2.0);
}

TEST_F(ConfigFile, DottedKeysAndInlineTablesAreTheSameKeys) {
  const ExperimentConfig c = load_config(write("data.n_train = 10\ntrain = { epochs = 2 }\n"));
  EXPECT_EQ(c.data.n_train, 10);
  EXPECT_EQ(c.train.epochs, 2);
}

TEST_F(ConfigFile, UnknownKeysAndTables) {
  expect_error("[data]\nn_trian = 5\n", "'data.n_trian'", 2, 1);
  expect_error("[data]\nn_train = 5\n\n[foo]\nx = 1\n", "unknown table 'foo'", 4, 2);
  expect_error("[model.cnn]\nx = 1\n", "'model.cnn'", 1, 8);
  expect_error("\"data.seed\" = 1\n", "'data.seed'", 1, 1);  // a quoted dot is not a table
  expect_error("[train]\nlr = 0.1\nmomentum = 0.9\n", "'train.momentum'", 3, 1);
}

// A typo or a key in the wrong table gets the nearest known key, from a file and from --set.
TEST_F(ConfigFile, UnknownKeysSuggestTheNearestKey) {
  expect_error("[data]\nn_trian = 5\n", "unknown key 'data.n_trian' (did you mean 'data.n_train'?)", 2, 1);
  expect_error("[train]\nseeds = 5\n", "'train.seeds' (did you mean 'sweep.seeds'? seeds belongs in [sweep])", 2, 1);
  expect_error("[train]\nlearning_rate = 0.1\n", "(did you mean 'train.lr'?)", 2, 1);
  expect_error("[dat]\nn_train = 5\n", "unknown table 'dat' (did you mean 'data'?)", 1, 2);
  expect_error("\"data.seed\" = 1\n", "write the key unquoted", 1, 1);
  EXPECT_EQ(error_of("[train]\nmomentum = 0.9\n").find("did you mean"), std::string::npos);
  for (const auto& [arg, hint] : std::vector<std::pair<std::string, std::string>>{
           {"train.learning_rate=0.01", "(did you mean 'train.lr'?)"},
           {"sweep.model=[\"mlp\"]", "(did you mean 'sweep.models'?)"},
           {"data.n_trian=5", "(did you mean 'data.n_train'?)"},
           {"train.seeds=3", "(did you mean 'sweep.seeds'? seeds belongs in [sweep])"},
           {"noise_std=1", "(did you mean 'data.noise_std' or 'regime.augmentation.noise_std'?"},
           {"sweep.grid.\"train.learning_rate\"=[1]", "(did you mean 'train.lr'?)"},
           {"sweep={model=[\"mlp\"]}", "(did you mean 'sweep.models'?)"}}) {
    std::string message;
    ExperimentConfig c;
    try {
      apply_override(c, arg);
    } catch (const ConfigError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(hint), std::string::npos) << arg << ": " << message;
  }
}

TEST_F(ConfigFile, ALeadingUtf8ByteOrderMarkIsSkipped) {
  EXPECT_EQ(load_config(write("\xEF\xBB\xBF[sweep]\nseeds = 3\n")).sweep.seeds, 3);
  expect_error("\xEF\xBB\xBF[sweep]\nseeds = 0\n", "sweep.seeds", 2, 9);
}

TEST_F(ConfigFile, WrongTypes) {
  expect_error("[data]\nn_train = 5.0\n", "data.n_train: expected an integer", 2, 11);
  expect_error("[data]\nper_replica = 1\n", "data.per_replica: expected a boolean", 2, 15);
  expect_error("[train]\nlr = \"fast\"\n", "train.lr: expected a number", 2, 6);
  expect_error("[sweep]\nmodels = \"mlp\"\n", "sweep.models: expected an array", 2, 10);
  expect_error("[sweep]\nmodels = [1]\n", "sweep.models[0]: expected a string", 2, 11);
  expect_error("data = 5\n", "data: expected a table", 1, 8);
  expect_error("[data]\ncoefficients = [1.0]\n", "data.coefficients: expected 2 entries", 2, 16);
  expect_error("[data]\nnoise_std = nan\n", "data.noise_std: must be finite", 2, 13);
}

TEST_F(ConfigFile, SizesMustBePositive) {
  expect_error("[data]\nn_train = -5\n", "data.n_train", 2, 11);
  expect_error("[data]\nn_test = 0\n", "data.n_test", 2, 10);
  expect_error("[data]\nn_train = 2147483648\n", "data.n_train", 2, 11);
  expect_error("[train]\nepochs = 0\n", "train.epochs", 2, 10);
  expect_error("[train]\nbatch_size = -1\n", "train.batch_size", 2, 14);
  expect_error("[train]\nstep_size = 0\n", "train.step_size", 2, 13);
  expect_error("[sweep]\nseeds = 0\n", "sweep.seeds", 2, 9);
  expect_error("[model.mlp]\nhidden = [64, 0]\n", "model.mlp.hidden[1]", 2, 15);
  expect_error("[model.mlp]\nhidden = [64, 2000]\n", "model.mlp.hidden[1]", 2, 15);
  expect_error("[model.mlp]\nhidden = [1, 1, 1, 1, 1, 1, 1, 1]\n", "model.mlp.hidden", 2, 10);
  expect_error("[data]\nseed = -1\n", "data.seed", 2, 8);
  expect_error("[sweep]\nseed = 4294967296\n", "sweep.seed", 2, 8);
}

TEST_F(ConfigFile, FactorsAndRatesMustBePositive) {
  expect_error("[data]\ntrain_factor = 0\n", "data.train_factor: must be > 0", 2, 16);
  expect_error("[data]\niid_factor = -0.2\n", "data.iid_factor", 2, 14);
  expect_error("data.ood_factor = -1\n", "data.ood_factor", 1, 19);
  expect_error("[regime.domain_randomization]\nfactor_range = [0.0, 0.2]\n",
               "regime.domain_randomization.factor_range[0]", 2, 17);
  expect_error("[regime.domain_randomization]\nfactor_range = [0.3, 0.2]\n",
               "regime.domain_randomization.factor_range[1]", 2, 22);
  expect_error("[train]\nlr = 0\n", "train.lr", 2, 6);
  expect_error("[train]\neps = -1e-8\n", "train.eps", 2, 7);
  expect_error("[train]\ngamma = 0\n", "train.gamma", 2, 9);
  expect_error("[train]\nbetas = [0.9, 1]\n", "train.betas[1]", 2, 15);
  expect_error("[data]\nnoise_std = -1\n", "data.noise_std", 2, 13);
  expect_error("[regime.augmentation]\nnoise_std = -0.5\n", "regime.augmentation.noise_std", 2, 13);
}

// Training runs in float32: values that would become 0, subnormal or infinite there are
// refused with the key and the representable range (they used to train silently broken).
TEST_F(ConfigFile, ValuesOutsideFloatRangeAreRefused) {
  expect_error("[train]\neps = 1e-46\n", "train.eps: 1e-46 is below the smallest float", 2, 7);
  expect_error("[train]\neps = 1e-50\n", "[1.17549e-38, 3.40282e+38]", 2, 7);
  expect_error("[train]\nlr = 1e-300\n", "train.lr: 1e-300 is below", 2, 6);
  expect_error("[data]\nintercept = 1e300\n", "data.intercept: 1e+300 is above the largest float", 2, 13);
  expect_error("[data]\ncoefficients = [1e300, 0]\n", "data.coefficients[0]: 1e+300 is above", 2, 17);
  expect_error("[data]\nstress_factors = [1e-40]\n", "data.stress_factors[0]", 2, 19);
  EXPECT_EQ(error_of("[train]\neps = 1e-37\nlr = 3e38\n[data]\nintercept = -1e30\ncoefficients = [0, 0]\n"), "");
}

TEST_F(ConfigFile, ListsOfNames) {
  expect_error("[sweep]\nmodels = []\n", "sweep.models", 2, 10);
  expect_error("[sweep]\nregimes = []\n", "sweep.regimes", 2, 11);
  expect_error("[model.mlp]\nhidden = []\n", "model.mlp.hidden", 2, 10);
  expect_error("[sweep]\nmodels = [\"mlp\", \"cnn\"]\n", "sweep.models[1]: unknown name 'cnn'", 2, 18);
  expect_error("[sweep]\nregimes = [\"baseline\", \"dropout\"]\n", "sweep.regimes[1]: unknown name 'dropout'", 2, 24);
  expect_error("[sweep]\nmodels = [\"mlp\", \"mlp\"]\n", "sweep.models[1]: duplicate 'mlp'", 2, 18);
  expect_error("[sweep]\nregimes = [\"baseline\", \"augmentation\", \"baseline\"]\n", "sweep.regimes[2]", 2, 40);
}

TEST_F(ConfigFile, SyntaxErrorsHaveALocation) {
  expect_error("[data\nn_train = 5\n", "TOML syntax error", 1, 6);
  expect_error("[data]\nn_train = 5\nn_train = 6\n", "TOML syntax error", 3, 11);
  expect_error("[train]\nlr = 1e-3.5\n", "TOML syntax error", 2, 10);
}

// Inputs the fuzzer (tests/fuzz) found that made toml++ assert (or, in a release build,
// assume something false): each is a ConfigError with a location, never a crash.
TEST(ConfigFuzzRegressions, ToleratedAsConfigErrors) {
  const std::vector<std::string> inputs = {
      std::string("[\b", 2),  // control character in a table header
      "[\n",                  // a header bracket, then the line ends
      "[[ \n",                // the same for an array of tables
      "train\xd2\x97"
      "ammaactor=1e-45\nregime.augmentation.noise_std=1e38\n",  // U+0497 in a key
      std::string("[data]\nn_train = 1\x7f\n"),                 // DEL
      "[sweep]\nfactors = [0.2, 0.1, 0.05, }_''''0.0[sweep]",   // '}' inside an array
  };
  for (const std::string& text : inputs) {
    try {
      parse_config(text, "fuzz.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("fuzz.toml:"), std::string::npos) << e.what();
    }
  }
  ExperimentConfig c;
  EXPECT_THROW(apply_override(c, "train.lr=[\n"), ConfigError);
  EXPECT_THROW(apply_override(c, "data.stress_factors=[0.5, }"), ConfigError);
  EXPECT_THROW(apply_override(c, std::string("train.lr=1\x01", 11)), ConfigError);
  // U+0393 in a string after a malformed value (toml++ reached an unreachable point).
  EXPECT_THROW(apply_override(c, "sweep.grid.\"train.lr\"=[1d-\"train\xce\x93r\"=[1d-3, 3e-3]"), ConfigError);
  EXPECT_THROW(apply_override(c,
                              "train.lr=\xa5"
                              "1e30"),
               ConfigError);
}

TEST(ConfigFuzzRegressions, ValidTomlStillParses) {
  // Nested arrays on their own lines, brackets and non-ASCII text in strings and comments.
  const ExperimentConfig c = parse_config(
      "# comment with [ brackets and \xc3\xa9\n"
      "[model.mlp]\nhidden = [\n  64,\n  32, # [\n]\n"
      "[ sweep ]\nmodels = [\"mlp\"]  # \xe2\x80\x94\n"
      "[sweep.grid]\n\"model.mlp.hidden\" = [\n  [64, 64],\n  [\n    32\n  ],\n]\n",
      "ok.toml");
  EXPECT_EQ(c.sweep.grid.size(), 1u);
}

TEST_F(ConfigFile, MissingFileIsAConfigError) { EXPECT_THROW(load_config(dir_ / "absent.toml"), ConfigError); }

// --set: same keys and checks; errors name the --set argument.
std::string set_error(const std::string& assignment) {
  ExperimentConfig c;
  try {
    apply_override(c, assignment);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigOverride, SetsAnyKey) {
  ExperimentConfig c;
  apply_override(c, "sweep.seeds=100");
  apply_override(c, "sweep.models=[\"mlp\"]");
  apply_override(c, "data.per_replica=true");
  apply_override(c, " train.lr = 0.01 ");
  apply_override(c, "regime.domain_randomization.factor_range=[0.05, 0.5]");
  apply_override(c, "model.mlp.hidden=[32]");
  EXPECT_EQ(c.sweep.seeds, 100);
  EXPECT_EQ(c.sweep.models, std::vector<ModelKind>{ModelKind::mlp});
  EXPECT_TRUE(c.data.per_replica);
  EXPECT_EQ(c.train.lr, 0.01);
  EXPECT_EQ(c.domain_randomization.factor_range, (std::array<double, 2>{0.05, 0.5}));
  EXPECT_EQ(c.mlp.hidden, std::vector<int>{32});
}

// A --set value is any TOML value: arrays may start with blanks, signs or nested arrays and
// span lines, as in a file (the value once sat at the start of a line, where `[ [` or `[+`
// read as a malformed table header).
TEST(ConfigOverride, ArraysAreValuesWhateverTheirLayout) {
  ExperimentConfig c;
  apply_override(c, "sweep.grid.\"model.mlp.hidden\"=[ [32], [64, 64] ]");
  ASSERT_EQ(c.sweep.grid.size(), 1u);
  EXPECT_EQ(c.sweep.grid[0].values, (std::vector<std::string>{"[32]", "[64, 64]"}));
  apply_override(c, "sweep.grid.\"train.lr\"=[+1e-3, 3e-3]");
  EXPECT_EQ(c.sweep.grid[1].values, (std::vector<std::string>{"0.001", "0.003"}));
  apply_override(c, "data.coefficients=[ +1.5, -2.0 ]");
  EXPECT_EQ(c.data.coefficients, (std::array<double, 2>{1.5, -2.0}));
  apply_override(c, "sweep.models=[\n  \"mlp\",\n]");
  EXPECT_EQ(c.sweep.models, std::vector<ModelKind>{ModelKind::mlp});
  EXPECT_THROW(apply_override(c, "model.mlp.hidden=[ [8] ]"), ConfigError);  // valid TOML, the wrong type
  EXPECT_THROW(apply_override(c, "model.mlp.hidden=[\n[8"), ConfigError);    // not TOML
}

TEST(ConfigOverride, ValuesOutsideFloatRangeAreRefused) {
  for (const std::string arg : {"train.eps=1e-46", "train.lr=1e-300", "data.intercept=1e300",
                                "data.coefficients=[1e300,0]", "sweep.grid.\"train.lr\"=[1e-3, 1e-50]"}) {
    const std::string message = set_error(arg);
    EXPECT_EQ(message.rfind("--set " + arg + ":", 0), 0u) << message;
    EXPECT_NE(message.find("float"), std::string::npos) << message;
  }
}

TEST(ConfigOverride, MalformedSetNamesTheArgument) {
  for (const std::string arg :
       {"sweep.seeds", "nope=1", "data=1", "sweep.seeds=", "sweep.seeds=abc", "sweep.seeds=0", "sweep.seeds=1.5",
        "sweep.seeds=1\nx=2", "sweep.models=[\"cnn\"]", "train.lr=-1", "data.train_factor=0"}) {
    const std::string message = set_error(arg);
    EXPECT_EQ(message.rfind("--set " + arg + ":", 0), 0u) << "for " << arg << ": " << message;
  }
  EXPECT_NE(set_error("sweep.seeds=0").find("sweep.seeds"), std::string::npos);
  EXPECT_NE(set_error("nope=1").find("unknown key 'nope'"), std::string::npos);
}

TEST_F(ConfigFile, OverridesApplyAfterTheFileInOrder) {
  const fs::path path = write("[sweep]\nseeds = 3\n");
  const ExperimentConfig c = resolve_config(path, {"sweep.seeds=5", "train.epochs=4", "sweep.seeds=6"});
  EXPECT_EQ(c.sweep.seeds, 6);
  EXPECT_EQ(c.train.epochs, 4);
  expect_same(resolve_config("", {}), ExperimentConfig{});
}

TEST_F(ConfigFile, WrittenConfigParsesBackExactly) {
  ExperimentConfig c;
  c.data.n_train = 2147483647;
  c.data.coefficients = {0.1 + 0.2, -1.0 / 3.0};
  c.data.intercept = std::numeric_limits<float>::max();  // the ends of float's range (training is float32)
  c.data.noise_std = std::numeric_limits<float>::min();
  c.data.train_factor = 123456789.123456789;
  c.data.ood_factor = 2.0 / 3.0;
  c.data.seed = 4294967295u;
  c.data.per_replica = true;
  c.train.lr = 3.0;  // integral values stay floats
  c.train.betas = {0.0, 0.99999999999999989};
  c.train.eps = 1e-12;
  c.sweep.models = {ModelKind::mlp, ModelKind::perceptron};
  c.sweep.regimes = {Regime::augmentation};
  c.sweep.seed = 99;
  c.mlp.hidden = {1, 1024, 7};
  c.domain_randomization.factor_range = {0.7, 0.7};
  c.augmentation.noise_std = 0.0;
  c.data.stress_factors = {0.05, 1.0 / 3.0, 3e38};
  c.sweep.seeds_per_model = {0, 7};
  apply_override(c, "sweep.grid.\"train.lr\"=[1e-3, 3e-3, 1]");
  apply_override(c, "sweep.grid.\"model.mlp.hidden\"=[[32], [64, 64]]");
  apply_override(c, "sweep.grid.\"data.per_replica\"=[true, false]");
  apply_override(c, "sweep.grid.\"regime.domain_randomization.factor_range\"=[[0.1, 0.2]]");
  const std::string text = config_to_toml(c);
  expect_same(load_config(write(text)), c);
  EXPECT_EQ(config_to_toml(load_config(write(text))), text);
  expect_same(load_config(write(config_to_toml(ExperimentConfig{}))), ExperimentConfig{});
}

TEST(ConfigJson, HasEveryTable) {
  const nlohmann::json j = config_to_json(ExperimentConfig{});
  EXPECT_EQ(j.at("data").at("n_train"), 5000);
  EXPECT_EQ(j.at("data").at("coefficients"), nlohmann::json({1.0, 2.0}));
  EXPECT_EQ(j.at("train").at("lr"), 1e-3);
  EXPECT_EQ(j.at("sweep").at("models"), nlohmann::json({"perceptron", "mlp"}));
  EXPECT_EQ(j.at("model").at("mlp").at("hidden"), nlohmann::json({64, 64}));
  EXPECT_EQ(j.at("regime").at("domain_randomization").at("factor_range"), nlohmann::json({0.01, 0.2}));
  EXPECT_EQ(j.at("regime").at("augmentation").at("noise_std"), 10.0);
}

// ---- data.stress_factors ----

TEST_F(ConfigFile, StressFactors) {
  EXPECT_EQ(load_config(write("[data]\nstress_factors = [0.05, 1, 20.5]\n")).data.stress_factors,
            (std::vector<double>{0.05, 1.0, 20.5}));
  EXPECT_TRUE(load_config(write("[data]\nstress_factors = []\n")).data.stress_factors.empty());
  EXPECT_TRUE(ExperimentConfig{}.data.stress_factors.empty());
  std::string many = "[data]\nstress_factors = [1";
  for (int i = 2; i <= 64; ++i) many += ", " + std::to_string(i);
  EXPECT_EQ(load_config(write(many + "]\n")).data.stress_factors.size(), 64u);
  expect_error(many + ", 65]\n", "data.stress_factors: expected 0 to 64 entries", 2, 18);
  expect_error("[data]\nstress_factors = [0.1, 0]\n", "data.stress_factors[1]: must be > 0", 2, 24);
  expect_error("[data]\nstress_factors = [0.1, -2]\n", "data.stress_factors[1]", 2, 24);
  expect_error("[data]\nstress_factors = [nan]\n", "data.stress_factors[0]: must be finite", 2, 19);
  expect_error("[data]\nstress_factors = [inf]\n", "data.stress_factors[0]: must be finite", 2, 19);
  expect_error("[data]\nstress_factors = [0.1, 0.2, 0.1]\n", "data.stress_factors[2]: duplicate", 2, 29);
  expect_error("[data]\nstress_factors = [1, 1.0]\n", "data.stress_factors[1]: duplicate", 2, 22);
  expect_error("[data]\nstress_factors = 0.1\n", "data.stress_factors: expected an array", 2, 18);
  expect_error("[data]\nstress_factors = [\"x\"]\n", "data.stress_factors[0]: expected a number", 2, 19);
}

// ---- [sweep.seeds_per_model] ----

TEST_F(ConfigFile, SeedsPerModel) {
  const ExperimentConfig c = load_config(write("[sweep]\nseeds = 3\n[sweep.seeds_per_model]\nmlp = 200\n"));
  EXPECT_EQ(c.sweep.seeds_of(ModelKind::mlp), 200);
  EXPECT_EQ(c.sweep.seeds_of(ModelKind::perceptron), 3);
  const ExperimentConfig both = load_config(write("sweep.seeds_per_model = { perceptron = 1, mlp = 16777216 }\n"));
  EXPECT_EQ(both.sweep.seeds_per_model, (std::array<int, 2>{1, 16777216}));
  // A model not in sweep.models may still have a count: it is ignored.
  const ExperimentConfig unused =
      load_config(write("[sweep]\nmodels = [\"mlp\"]\n[sweep.seeds_per_model]\nperceptron = 5\n"));
  EXPECT_EQ(unused.sweep.seeds_of(ModelKind::perceptron), 5);
  expect_error("[sweep.seeds_per_model]\nperceptron = 0\n", "sweep.seeds_per_model.perceptron", 2, 14);
  expect_error("[sweep.seeds_per_model]\nmlp = 16777217\n", "sweep.seeds_per_model.mlp", 2, 7);
  expect_error("[sweep.seeds_per_model]\nmlp = 2.0\n", "sweep.seeds_per_model.mlp: expected an integer", 2, 7);
  expect_error("[sweep.seeds_per_model]\ncnn = 1\n", "unknown key 'sweep.seeds_per_model.cnn'", 2, 1);
  expect_error("[sweep]\nseeds_per_model = 5\n", "sweep.seeds_per_model: expected a table", 2, 19);
}

TEST(ConfigOverride, SeedsPerModel) {
  ExperimentConfig c;
  apply_override(c, "sweep.seeds_per_model.mlp=200");
  EXPECT_EQ(c.sweep.seeds_of(ModelKind::mlp), 200);
  EXPECT_EQ(c.sweep.seeds_of(ModelKind::perceptron), 10);
  const std::string message = set_error("sweep.seeds_per_model.mlp=0");
  EXPECT_EQ(message.rfind("--set sweep.seeds_per_model.mlp=0: sweep.seeds_per_model.mlp", 0), 0u) << message;
}

TEST(ConfigWrite, SeedsPerModelOnlyWithTheKeysSet) {
  ExperimentConfig c;
  EXPECT_EQ(config_to_toml(c).find("seeds_per_model"), std::string::npos);
  c.sweep.seeds_per_model[static_cast<int>(ModelKind::mlp)] = 200;
  const std::string text = config_to_toml(c);
  EXPECT_NE(text.find("\n[sweep.seeds_per_model]\nmlp = 200 "), std::string::npos) << text;
  EXPECT_EQ(text.find("perceptron = "), std::string::npos) << text;
}

// ---- [sweep.grid] ----

std::vector<std::string> axis_keys(const ExperimentConfig& c) {
  std::vector<std::string> keys;
  for (const GridAxis& axis : c.sweep.grid) keys.push_back(axis.key);
  return keys;
}

TEST_F(ConfigFile, GridAxesAreCanonicalAndSortedByKey) {
  const ExperimentConfig c = load_config(write(R"([sweep.grid]
"train.lr" = [1e-3, 3e-3]
"data.train_factor" = [0.1, 0.2, 0.5]
"model.mlp.hidden" = [[32], [64,64]]
"regime.augmentation.noise_std" = [1, 10.0]
)"));
  ASSERT_EQ(axis_keys(c), (std::vector<std::string>{"data.train_factor", "model.mlp.hidden",
                                                    "regime.augmentation.noise_std", "train.lr"}));
  EXPECT_EQ(c.sweep.grid[0].values, (std::vector<std::string>{"0.1", "0.2", "0.5"}));
  EXPECT_EQ(c.sweep.grid[1].values, (std::vector<std::string>{"[32]", "[64, 64]"}));
  EXPECT_EQ(c.sweep.grid[2].values, (std::vector<std::string>{"1.0", "10.0"}));
  EXPECT_EQ(c.sweep.grid[3].values, (std::vector<std::string>{"0.001", "0.003"}));
  // The grid does not change the base config.
  expect_same(load_config(write("")), [&] {
    ExperimentConfig base = c;
    base.sweep.grid.clear();
    return base;
  }());
}

TEST_F(ConfigFile, GridNestedFormIsFlattened) {
  const ExperimentConfig quoted =
      load_config(write("[sweep.grid]\n\"train.lr\" = [0.01]\n\"model.mlp.hidden\" = [[8]]\n"));
  const ExperimentConfig nested = load_config(write("[sweep.grid]\ntrain.lr = [0.01]\nmodel.mlp.hidden = [[8]]\n"));
  const ExperimentConfig inline_table =
      load_config(write("[sweep]\ngrid = { train = { lr = [1e-2] }, "
                        "\"model.mlp\" = { hidden = [[8]] } }\n"));
  ASSERT_EQ(axis_keys(nested), (std::vector<std::string>{"model.mlp.hidden", "train.lr"}));
  expect_same(nested, quoted);
  expect_same(inline_table, quoted);
  expect_error("[sweep.grid]\n\"train.lr\" = [0.1]\ntrain.lr = [0.2]\n", "sweep.grid.\"train.lr\": axis given twice", 2,
               14);
  expect_error("[sweep.grid]\ntrain = {}\n", "sweep.grid.\"train\"", 2, 9);
}

// --set 'sweep.grid=<table>' is the whole grid: it replaces the file's axes ({} clears them),
// where --set 'sweep.grid."KEY"=[...]' sets one axis.
TEST_F(ConfigFile, SetGridTableReplacesTheWholeGrid) {
  const fs::path path = write("[sweep.grid]\n\"train.lr\" = [1e-3, 3e-3]\n\"data.seed\" = [0, 1]\n");
  EXPECT_TRUE(resolve_config(path, {"sweep.grid={}"}).sweep.grid.empty());
  const ExperimentConfig replaced = resolve_config(path, {"sweep.grid={\"train.epochs\"=[1,2]}"});
  ASSERT_EQ(axis_keys(replaced), std::vector<std::string>{"train.epochs"});
  EXPECT_EQ(replaced.sweep.grid[0].values, (std::vector<std::string>{"1", "2"}));
  const ExperimentConfig nested = resolve_config(path, {"sweep={grid={train={epochs=[3]}}}"});
  EXPECT_EQ(axis_keys(nested), std::vector<std::string>{"train.epochs"});
  const ExperimentConfig one_axis = resolve_config(path, {"sweep.grid.\"train.epochs\"=[1,2]"});
  EXPECT_EQ(axis_keys(one_axis), (std::vector<std::string>{"data.seed", "train.epochs", "train.lr"}));
  const ExperimentConfig then_axis = resolve_config(path, {"sweep.grid={}", "sweep.grid.\"train.lr\"=[0.1]"});
  EXPECT_EQ(axis_keys(then_axis), std::vector<std::string>{"train.lr"});
}

TEST_F(ConfigFile, GridErrors) {
  expect_error("[sweep.grid]\n\"train.lr\" = [1e-3, 0.001]\n", "sweep.grid.\"train.lr\"[1]: duplicate value 0.001", 2,
               21);
  expect_error("[sweep.grid]\n\"model.mlp.hidden\" = [[64, 64], [64,64]]\n",
               "sweep.grid.\"model.mlp.hidden\"[1]: duplicate", 2, 33);
  expect_error("[sweep.grid]\n\"train.momentum\" = [0.9]\n",
               "sweep.grid.\"train.momentum\": unknown key 'train.momentum'", 2, 20);
  expect_error("[sweep.grid]\n\"data\" = [1]\n",
               "unknown key 'data': [data] is a table; an axis is one of its keys, e.g. \"data.n_train\"", 2, 10);
  expect_error("[sweep.grid]\n\"sweep.seeds\" = [1, 2]\n", "sweep.grid.\"sweep.seeds\": keys of [sweep]", 2, 17);
  expect_error("[sweep.grid]\n\"sweep.grid\" = [1]\n", "sweep.grid.\"sweep.grid\": keys of [sweep]", 2, 16);
  expect_error("[sweep.grid]\nsweep.seeds = [1]\n", "sweep.grid.\"sweep.seeds\": keys of [sweep]", 2, 15);
  expect_error("[sweep.grid]\n\"train.lr\" = []\n", "sweep.grid.\"train.lr\": empty", 2, 14);
  expect_error("[sweep.grid]\n\"train.lr\" = 0.001\n", "sweep.grid.\"train.lr\": expected an array", 2, 14);
  expect_error("[sweep.grid]\n\"train.lr\" = [0.1, -1]\n", "sweep.grid.\"train.lr\"[1]: must be > 0", 2, 20);
  expect_error("[sweep.grid]\n\"train.epochs\" = [1, 2.5]\n", "sweep.grid.\"train.epochs\"[1]: expected an integer", 2,
               22);
  expect_error("[sweep.grid]\n\"model.mlp.hidden\" = [[32], [0]]\n", "sweep.grid.\"model.mlp.hidden\"[1][0]", 2, 30);
  expect_error("[sweep.grid]\n\"model.mlp.hidden\" = [32]\n", "sweep.grid.\"model.mlp.hidden\"[0]: expected an array",
               2, 23);
  expect_error("[sweep]\ngrid = [1]\n", "sweep.grid: expected a table", 2, 8);
}

TEST(ConfigOverride, GridAxes) {
  ExperimentConfig c;
  apply_override(c, "sweep.grid.\"train.lr\"=[1e-3,3e-3]");
  apply_override(c, "sweep.grid.'data.train_factor' = [0.1]");
  ASSERT_EQ(axis_keys(c), (std::vector<std::string>{"data.train_factor", "train.lr"}));
  EXPECT_EQ(c.sweep.grid[1].values, (std::vector<std::string>{"0.001", "0.003"}));
  apply_override(c, "sweep.grid.train.lr=[0.01]");  // the unquoted form; replaces the axis
  ASSERT_EQ(axis_keys(c), (std::vector<std::string>{"data.train_factor", "train.lr"}));
  EXPECT_EQ(c.sweep.grid[1].values, std::vector<std::string>{"0.01"});
  apply_override(c, "sweep.grid={\"model.mlp.hidden\" = [[4]]}");  // the whole grid: replaces every axis
  EXPECT_EQ(axis_keys(c), (std::vector<std::string>{"model.mlp.hidden"}));

  const auto expect_set_error = [](const std::string& arg, const std::string& what) {
    const std::string message = set_error(arg);
    EXPECT_EQ(message.rfind("--set " + arg + ": ", 0), 0u) << "for " << arg << ": " << message;
    EXPECT_NE(message.find(what), std::string::npos) << "for " << arg << ": " << message;
  };
  expect_set_error("sweep.grid.\"train.lr\"=[]", "sweep.grid.\"train.lr\": empty");
  expect_set_error("sweep.grid.\"train.lr\"=[1e-3, 0.001]", "sweep.grid.\"train.lr\"[1]: duplicate value 0.001");
  expect_set_error("sweep.grid.\"train.lr\"=0.1", "expected an array");
  expect_set_error("sweep.grid.\"train.lr\"=[-1]", "sweep.grid.\"train.lr\"[0]: must be > 0");
  expect_set_error("sweep.grid.\"nope\"=[1]", "unknown key 'nope'");
  expect_set_error("sweep.grid.\"sweep.seeds\"=[1]", "keys of [sweep]");
  expect_set_error("sweep.grid.\"\"=[1]", "unknown key");
  expect_set_error("sweep.grid.\"train.lr\"x=[1]", "unknown key");
  expect_set_error("sweep.grid.\"train.lr=[1]", "expected key=value");
  expect_set_error("sweep.grid.\"train.lr\"=", "missing value");
}

TEST_F(ConfigFile, GridOverrideReplacesTheFilesAxis) {
  const fs::path path = write("[sweep.grid]\n\"train.lr\" = [0.1, 0.2]\n\"data.train_factor\" = [0.5]\n");
  const ExperimentConfig c = resolve_config(path, {"sweep.grid.\"train.lr\"=[0.3]"});
  ASSERT_EQ(axis_keys(c), (std::vector<std::string>{"data.train_factor", "train.lr"}));
  EXPECT_EQ(c.sweep.grid[0].values, std::vector<std::string>{"0.5"});
  EXPECT_EQ(c.sweep.grid[1].values, std::vector<std::string>{"0.3"});
}

// Axes that leave some models or regimes unchanged retrain identical replicas: named, counted.
TEST(ConfigGrid, IdleAxesAreNamedWithTheirCopies) {
  ExperimentConfig c;
  for (const char* set :
       {"sweep.seeds=3", "sweep.regimes=[\"baseline\"]", "sweep.models=[\"perceptron\"]",
        "sweep.grid.\"regime.augmentation.noise_std\"=[1, 5, 10, 20]", "sweep.grid.\"model.mlp.hidden\"=[[8], [64]]"})
    apply_override(c, set);
  EXPECT_EQ(idle_axis_warnings(c),
            (std::vector<std::string>{
                "grid axis model.mlp.hidden does not affect perceptron: its 2 values train the same perceptron "
                "replicas again (12 of 24 replicas are bit-identical copies)",
                "grid axis regime.augmentation.noise_std does not affect baseline: its 4 values train the same "
                "baseline replicas again (18 of 24 replicas are bit-identical copies)"}));
  // The default sweep: perceptrons repeat across the widths (2 values x 3 regimes x 10 seeds).
  ExperimentConfig d;
  apply_override(d, "sweep.grid.\"model.mlp.hidden\"=[[8], [16, 16]]");
  apply_override(d, "sweep.grid.\"data.train_factor\"=[0.1, 0.2]");
  const auto w = idle_axis_warnings(d);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("data.train_factor does not affect domain_randomization"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("(40 of 240 replicas"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("(60 of 240 replicas"), std::string::npos) << w[1];
  // Axes every replica depends on, or of one value, or over a model not in the sweep: silent.
  ExperimentConfig e;
  apply_override(e, "sweep.grid.\"train.lr\"=[1e-3, 3e-3]");
  apply_override(e, "sweep.grid.\"regime.augmentation.noise_std\"=[1]");
  EXPECT_TRUE(idle_axis_warnings(e).empty());
  apply_override(e, "sweep.models=[\"mlp\"]");
  apply_override(e, "sweep.grid.\"model.mlp.hidden\"=[[8], [16]]");
  EXPECT_TRUE(idle_axis_warnings(e).empty());
}

TEST(ConfigWrite, GridAndStressFactorsInConfigToml) {
  ExperimentConfig c;
  apply_override(c, "sweep.grid.\"train.lr\"=[1e-3, 3e-3]");
  apply_override(c, "data.stress_factors=[0.05, 2]");
  const std::string text = config_to_toml(c);
  EXPECT_NE(text.find("\nstress_factors = [0.05, 2.0] "), std::string::npos) << text;
  EXPECT_NE(text.find("\n[sweep.grid]\n\"train.lr\" = [0.001, 0.003] "), std::string::npos) << text;
  EXPECT_EQ(config_to_toml(ExperimentConfig{}).find("[sweep.grid]"), std::string::npos);
  const nlohmann::json j = config_to_json(c);
  EXPECT_EQ(j.at("sweep").at("grid").at("train.lr"), nlohmann::json({0.001, 0.003}));
  EXPECT_EQ(j.at("data").at("stress_factors"), nlohmann::json({0.05, 2.0}));
}

// ---- apply_value, differing_keys, config_hash, replica_count ----

TEST(ConfigApplyValue, BuildsEachGridCell) {
  ExperimentConfig base;
  apply_override(base, "sweep.grid.\"train.lr\"=[1e-3, 3e-3]");
  apply_override(base, "sweep.grid.\"model.mlp.hidden\"=[[32], [64, 64]]");
  std::vector<std::pair<double, std::vector<int>>> cells;
  for (const std::string& hidden : base.sweep.grid[0].values)
    for (const std::string& lr : base.sweep.grid[1].values) {
      ExperimentConfig cell = base;
      apply_value(cell, base.sweep.grid[0].key, hidden);
      apply_value(cell, base.sweep.grid[1].key, lr);
      cells.emplace_back(cell.train.lr, cell.mlp.hidden);
    }
  EXPECT_EQ(cells, (std::vector<std::pair<double, std::vector<int>>>{
                       {0.001, {32}}, {0.003, {32}}, {0.001, {64, 64}}, {0.003, {64, 64}}}));
  ExperimentConfig c;
  apply_value(c, "data.per_replica", "true");
  EXPECT_TRUE(c.data.per_replica);
  EXPECT_THROW(apply_value(c, "train.lr", "-1"), ConfigError);
  EXPECT_THROW(apply_value(c, "train.lr", "fast"), ConfigError);
  EXPECT_THROW(apply_value(c, "train.rate", "1"), ConfigError);
  try {
    apply_value(c, "train.lr", "0");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.lr: must be > 0"), std::string::npos) << e.what();
  }
}

TEST(ConfigDiffering, NamesTheKeysInTableOrder) {
  const ExperimentConfig a;
  EXPECT_TRUE(differing_keys(a, a).empty());
  ExperimentConfig b = a;
  apply_override(b, "sweep.grid.\"train.lr\"=[1e-3, 3e-3]");
  apply_override(b, "sweep.seeds_per_model.mlp=3");
  apply_override(b, "model.mlp.hidden=[8]");
  apply_override(b, "data.stress_factors=[0.5]");
  EXPECT_EQ(differing_keys(a, b), (std::vector<std::string>{"data.stress_factors", "sweep.seeds_per_model.mlp",
                                                            "sweep.grid.\"train.lr\"", "model.mlp.hidden"}));
  EXPECT_EQ(differing_keys(b, a), differing_keys(a, b));
  ExperimentConfig c = b;
  apply_override(c, "sweep.grid.\"train.lr\"=[0.001, 0.003]");  // the same values: no difference
  EXPECT_TRUE(differing_keys(b, c).empty());
  apply_override(c, "sweep.grid.\"train.lr\"=[0.003, 0.001]");  // the order of values matters
  apply_override(c, "sweep.grid.\"data.seed\"=[1, 2]");
  EXPECT_EQ(differing_keys(b, c), (std::vector<std::string>{"sweep.grid.\"data.seed\"", "sweep.grid.\"train.lr\""}));
}

TEST(ConfigHash, StableAndSensitive) {
  const ExperimentConfig a;
  const std::string h = config_hash(a);
  ASSERT_EQ(h.size(), 16u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
  std::uint64_t fnv = 0xcbf29ce484222325ull;
  for (const char ch : config_to_toml(a)) fnv = (fnv ^ static_cast<unsigned char>(ch)) * 0x100000001b3ull;
  char expected[17];
  snprintf(expected, sizeof expected, "%016llx", static_cast<unsigned long long>(fnv));
  EXPECT_EQ(h, expected);
  EXPECT_EQ(config_hash(ExperimentConfig{}), h);
  EXPECT_EQ(config_hash(parse_config(config_to_toml(a), "x")), h);
  ExperimentConfig b;
  apply_override(b, "train.lr=0.002");
  EXPECT_NE(config_hash(b), h);
  ExperimentConfig g;
  apply_override(g, "sweep.grid.\"train.lr\"=[0.001]");
  EXPECT_NE(config_hash(g), h);
  EXPECT_NE(config_hash(g), config_hash(b));
}

TEST(ConfigReplicas, Count) {
  ExperimentConfig c;
  EXPECT_EQ(replica_count(c), 60u);  // (10 + 10) seeds x 3 regimes
  apply_override(c, "sweep.seeds_per_model.mlp=5");
  EXPECT_EQ(replica_count(c), 45u);
  apply_override(c, "sweep.grid.\"train.lr\"=[1e-3, 3e-3]");
  apply_override(c, "sweep.grid.\"data.seed\"=[1, 2, 3]");
  EXPECT_EQ(replica_count(c), 6u * 45u);
  apply_override(c, "sweep.models=[\"perceptron\"]");  // mlp's count is ignored
  apply_override(c, "sweep.regimes=[\"baseline\"]");
  EXPECT_EQ(replica_count(c), 6u * 10u);
}

TEST_F(ConfigFile, TooManyReplicasIsAnError) {
  std::string seeds = "[0";
  for (int i = 1; i < 21; ++i) seeds += ", " + std::to_string(i);
  // 21 x 2^25 x 3 = 2113929216 replicas: allowed; one more grid value: 2214592512, too many.
  const ExperimentConfig ok = resolve_config("", {"sweep.seeds=16777216", "sweep.grid.\"data.seed\"=" + seeds + "]"});
  EXPECT_EQ(replica_count(ok), 2113929216u);
  std::string message;
  try {
    resolve_config("", {"sweep.seeds=16777216", "sweep.grid.\"data.seed\"=" + seeds + ", 21]"});
  } catch (const ConfigError& e) {
    message = e.what();
  }
  for (const char* part : {"2214592512", "2147483647", "sweep.seeds", "sweep.seeds_per_model", "sweep.grid"})
    EXPECT_NE(message.find(part), std::string::npos) << "expected " << part << " in: " << message;
  const fs::path path = write("[sweep]\nseeds = 16777216\n[sweep.grid]\n\"data.seed\" = " + seeds + ", 21]\n");
  EXPECT_NO_THROW(load_config(path));  // parsing alone does not count
  EXPECT_THROW(resolve_config(path, {}), ConfigError);
  EXPECT_NO_THROW(resolve_config(path, {"sweep.regimes=[\"baseline\"]"}));
}

// examples/seed.toml is the default experiment with every key: regenerate it from any
// default run's config.toml when keys or comments change.
TEST(SeedExample, IsTheDefaultConfigWithEveryKey) {
  const fs::path path = fs::path(UNDERSPEC_SOURCE_DIR) / "examples" / "seed.toml";
  expect_same(load_config(path), ExperimentConfig{});
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), config_to_toml(ExperimentConfig{}));
}

}  // namespace
}  // namespace underspec

namespace underspec {
namespace {

std::string load_error(const std::filesystem::path& path) {
  try {
    load_config(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// Paths that are not a config file are refused by name, never read as an empty config.
TEST_F(ConfigFile, PathsThatAreNotAConfigFileAreNamed) {
  EXPECT_NE(load_error(dir_).find("is a directory, not a config file"), std::string::npos);
  EXPECT_NE(load_error(dir_ / "missing.toml").find("missing.toml: no such config file"), std::string::npos);
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(load_error(fifo).find("is not a regular file (a FIFO"), std::string::npos);
  fs::create_symlink(dir_ / "b", dir_ / "a");
  fs::create_symlink(dir_ / "a", dir_ / "b");
  EXPECT_NE(load_error(dir_ / "a").find("too many levels of symbolic links"), std::string::npos);
}

TEST(ConfigOverride, InlineTablesSetEachKeyOrSayHowToWriteThem) {
  ExperimentConfig c;
  apply_override(c, "data={n_train=10, seed=3}");
  EXPECT_EQ(c.data.n_train, 10);
  EXPECT_EQ(c.data.seed, 3u);
  apply_override(c, "regime={augmentation={noise_std=2.5}}");
  EXPECT_EQ(c.augmentation.noise_std, 2.5);
  const auto error = [&](const char* set) {
    try {
      apply_override(c, set);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error("data=3").find("is a table; set one of its keys (--set data.KEY=VALUE)"), std::string::npos);
  EXPECT_NE(error("data={bogus=1}").find("unknown key 'data.bogus'"), std::string::npos);
  EXPECT_NE(error("data={n_train=0}").find("data.n_train: must be in [1,"), std::string::npos);
}

}  // namespace
}  // namespace underspec

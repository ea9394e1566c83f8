// The names of models and regimes as they appear in configs and outputs.
#include <string>

#include "underspec/config/config.hpp"

namespace underspec {

const char* to_string(ModelKind model) {
  switch (model) {
    case ModelKind::perceptron:
      return "perceptron";
    case ModelKind::mlp:
      return "mlp";
  }
  return "?";
}

const char* to_string(Regime regime) {
  switch (regime) {
    case Regime::baseline:
      return "baseline";
    case Regime::domain_randomization:
      return "domain_randomization";
    case Regime::augmentation:
      return "augmentation";
  }
  return "?";
}

bool parse_model(const std::string& name, ModelKind& out) {
  for (ModelKind m : {ModelKind::perceptron, ModelKind::mlp})
    if (name == to_string(m)) {
      out = m;
      return true;
    }
  return false;
}

bool parse_regime(const std::string& name, Regime& out) {
  for (Regime r : {Regime::baseline, Regime::domain_randomization, Regime::augmentation})
    if (name == to_string(r)) {
      out = r;
      return true;
    }
  return false;
}

}  // namespace underspec

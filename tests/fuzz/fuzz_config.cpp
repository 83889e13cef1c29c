// tests/fuzz/fuzz_config.cpp: libFuzzer target for the JSON configs: the training config over the
// tiny preset (train/trainer.h), the simulation settings and the class table (augment/simulator.h).
//
// The bytes are JSON text. Text that does not parse is turned into ConfigError as every caller
// does (tools/train_cmd.cpp, train/evaluate.cpp); a parsed value must give a config or a
// caf::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "augment/simulator.h"
#include "kernels/error.h"
#include "train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    caf::class_selection_from_text("bottle", text, "fuzz");
  } catch (const caf::Error&) {
  }
  try {
    caf::class_selection_from_text("no_such_class", text, "fuzz");
  } catch (const caf::Error&) {
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return 0;  // the callers' ConfigError("not valid JSON")
  }
  // What from_json accepts, to_json must write back and from_json read again: outside the try,
  // so a round trip that throws is reported.
  bool train_ok = true, sim_ok = true;
  caf::TrainConfig train;
  caf::SimConfig sim;
  try {
    train = caf::TrainConfig::from_json(j, "fuzz", caf::TrainConfig::preset_named("tiny"));
  } catch (const caf::Error&) {
    train_ok = false;
  }
  if (train_ok)
    caf::TrainConfig::from_json(train.to_json(), "round trip",
                                caf::TrainConfig::preset_named("tiny"));
  try {
    sim = caf::sim_config_from_json(j, "fuzz");
  } catch (const caf::Error&) {
    sim_ok = false;
  }
  if (sim_ok) caf::sim_config_from_json(caf::sim_config_to_json(sim), "round trip");
  return 0;
}

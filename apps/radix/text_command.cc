#include "text_command.h"

#include <chrono>
#include <cstdio>
#include <memory>

namespace radix::cli {

void run_text_command(const ModelArgs& args, const TextCommand& command) {
  require_tokenizer(args.model);
  auto t0 = std::chrono::steady_clock::now();
  LoadOptions load = load_options(args);
  load.head = command.load_head;
  std::unique_ptr<Model> model = Model::load(args.model, load);
  const ModelInfo& info = model->info();
  const Tokenizer tokenizer = load_tokenizer(info);
  StageTimes times;
  times.load_ms = ms_since(t0);

  t0 = std::chrono::steady_clock::now();
  RaggedBatch batch;
  for (size_t i = 0; i < command.num_inputs; ++i) {
    batch.add_sequence(encode_input(tokenizer, command.input_text(info, i),
                                    command.add_special_tokens, info.max_positions(), args.truncate,
                                    i));
  }
  times.tokenize_ms = ms_since(t0);

  ForwardOptions options = command.forward;
  options.mode = parse_attention_mode(args.mode);
  t0 = std::chrono::steady_clock::now();
  const ForwardResult r = model->forward(batch, options);
  times.forward_ms = ms_since(t0);

  nlohmann::json out;
  out["model"] = info.spec;
  out["mode"] = args.mode;
  command.write_result(r, out);
  std::printf("%s\n", out.dump().c_str());
  print_stage_times(command.name, times, r, args.mode, *model);
}

}  // namespace radix::cli

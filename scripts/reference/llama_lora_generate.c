// Greedy generation with llama.cpp's C API, with or without a GGUF LoRA adapter: shows that
// llama.cpp loads a `pissa export --format gguf-lora` file and what it then generates.
//
//   cc -O2 -o llama_lora_generate scripts/reference/llama_lora_generate.c -I LLAMA/include -I LLAMA/ggml/include \
//      LLAMA/build/src/libllama.a LLAMA/build/ggml/src/libggml.a LLAMA/build/ggml/src/libggml-cpu.a \
//      LLAMA/build/ggml/src/libggml-base.a -lstdc++ -lm -lpthread
//   ./llama_lora_generate BASE.gguf LORA.gguf|- "prompt" N_TOKENS
//
// Prints the 5 most likely next tokens after the prompt (id and logit) and the greedy continuation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s BASE.gguf LORA.gguf|- PROMPT N_TOKENS\n", argv[0]);
        return 2;
    }
    const int n_predict = atoi(argv[4]);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (strcmp(argv[2], "-") != 0) {
        struct llama_adapter_lora *lora = llama_adapter_lora_init(model, argv[2]);
        if (!lora) { fprintf(stderr, "cannot load the adapter %s\n", argv[2]); return 1; }
        float scale = 1.0f;
        if (llama_set_adapters_lora(ctx, &lora, 1, &scale) != 0) { fprintf(stderr, "cannot apply the adapter\n"); return 1; }
        fprintf(stderr, "adapter %s applied (scale 1)\n", argv[2]);
    }
    llama_token tokens[512];
    int n = llama_tokenize(vocab, argv[3], (int)strlen(argv[3]), tokens, 512, true, true);
    if (n < 0) { fprintf(stderr, "prompt too long\n"); return 1; }
    const int n_vocab = llama_vocab_n_tokens(vocab);
    struct llama_batch batch = llama_batch_get_one(tokens, n);
    for (int step = 0; step < n_predict; step++) {
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        const float *logits = llama_get_logits_ith(ctx, -1);
        llama_token best = 0;
        for (llama_token t = 1; t < n_vocab; t++) if (logits[t] > logits[best]) best = t;
        if (step == 0) {
            printf("top-5 after the prompt:");
            int used[5] = {-1, -1, -1, -1, -1};
            for (int k = 0; k < 5; k++) {
                int arg = -1;
                for (int t = 0; t < n_vocab; t++) {
                    int taken = 0;
                    for (int j = 0; j < k; j++) taken |= used[j] == t;
                    if (!taken && (arg < 0 || logits[t] > logits[arg])) arg = t;
                }
                used[k] = arg;
                printf(" %d (%.3f)", arg, logits[arg]);
            }
            printf("\ncontinuation: ");
        }
        if (llama_vocab_is_eog(vocab, best)) break;
        char piece[256];
        int len = llama_token_to_piece(vocab, best, piece, sizeof piece, 0, true);
        if (len > 0) fwrite(piece, 1, (size_t)len, stdout);
        fflush(stdout);
        tokens[0] = best;
        batch = llama_batch_get_one(tokens, 1);
    }
    printf("\n");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

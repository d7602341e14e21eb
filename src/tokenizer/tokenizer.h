/* Tokenizers built from a GGUF file's `tokenizer.*` metadata.
 *
 * This module owns the vocabulary (token texts, scores, types, BPE merges, special ids),
 * text -> ids (SentencePiece-style "llama" and byte-level BPE "gpt2" with the pre-tokenizer
 * named by `tokenizer.ggml.pre`), and ids -> text (whole or streamed).
 *
 * Ownership and lifetime:
 *   - strata_vocab_load() copies everything it needs out of the gguf_file: the file may be
 *     closed right after it returns. The vocab is freed with strata_vocab_free().
 *   - A loaded vocab is immutable: every function taking `const strata_vocab *` may be called
 *     from several threads at once (each call uses its own scratch memory).
 *   - Pointers returned by accessors (token text, pre-tokenizer name) live until
 *     strata_vocab_free().
 *
 * Errors: functions return a strata_status (or -1 for the count-returning ones) and leave a
 * message for strata_last_error(). Bad text (invalid UTF-8, NUL bytes, any byte sequence) is
 * never an error: it is tokenized without losing bytes wherever the vocabulary can represent
 * them (byte-fallback tokens in SPM, the 256 byte symbols in BPE).
 *
 * Special tokens: tokens of type CONTROL (and UNKNOWN) are recognised in text only when the
 * caller passes parse_special = true. Tokens of type USER_DEFINED are "added tokens" in the
 * Hugging Face sense and are always matched as whole pieces of text, as the reference
 * tokenizers do (e.g. gpt-neox/mpt's runs of spaces); the vocab test vectors depend on it.
 * When several special tokens could match, the leftmost one wins, then the longest. */
#ifndef STRATA_TOKENIZER_TOKENIZER_H
#define STRATA_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "gguf/gguf.h"

typedef struct strata_vocab strata_vocab;

typedef enum {
    STRATA_VOCAB_SPM = 1, /* tokenizer.ggml.model = "llama" */
    STRATA_VOCAB_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
} strata_vocab_type;

/* Token types as stored in tokenizer.ggml.token_type (values fixed by the GGUF format). */
typedef enum {
    STRATA_TOKEN_UNDEFINED = 0,
    STRATA_TOKEN_NORMAL = 1,
    STRATA_TOKEN_UNKNOWN = 2,
    STRATA_TOKEN_CONTROL = 3,
    STRATA_TOKEN_USER_DEFINED = 4,
    STRATA_TOKEN_UNUSED = 5,
    STRATA_TOKEN_BYTE = 6,
} strata_token_type;

/* Loads the vocabulary of `f`. Rejects (STRATA_ERR_UNSUPPORTED) tokenizer models other than
 * "llama" and "gpt2", and (STRATA_ERR_FORMAT) malformed metadata: missing or non-string
 * token list, score/type arrays of the wrong length, unparseable merges.
 *
 * `tokenizer.ggml.pre` selects the BPE pre-tokenizer. Names we do not know fall back to
 * the "default" pre-tokenizer (the same one used when the key is absent), silently: the
 * name is kept and reported by strata_vocab_pre_name(), strata_vocab_pre_known() says
 * whether it was recognised. Special-token ids that are out of range are ignored (as if
 * the key were absent). On success *out owns everything; free it with strata_vocab_free. */
strata_status strata_vocab_load(const gguf_file *f, strata_vocab **out);
void strata_vocab_free(strata_vocab *v); /* NULL is fine */

strata_vocab_type strata_vocab_kind(const strata_vocab *v);
int32_t strata_vocab_n_tokens(const strata_vocab *v);
/* The tokenizer.ggml.pre value ("" when absent); lives as long as the vocab. */
const char *strata_vocab_pre_name(const strata_vocab *v);
bool strata_vocab_pre_known(const strata_vocab *v);

/* Special ids; -1 when the vocabulary has none. */
int32_t strata_vocab_bos(const strata_vocab *v);
int32_t strata_vocab_eos(const strata_vocab *v);
int32_t strata_vocab_eot(const strata_vocab *v); /* eot_token_id, else a known end-of-turn control token */
int32_t strata_vocab_unk(const strata_vocab *v);
int32_t strata_vocab_pad(const strata_vocab *v);
bool strata_vocab_add_bos(const strata_vocab *v);
bool strata_vocab_add_eos(const strata_vocab *v);
bool strata_vocab_add_space_prefix(const strata_vocab *v);
/* End of generation: EOS, EOT, EOM, or a control token whose text is a well-known end marker
 * (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, ...). False for bad ids. */
bool strata_vocab_is_eog(const strata_vocab *v, int32_t id);
/* Control, user-defined or unknown-type token (the ones parse_special is about). */
bool strata_vocab_is_special(const strata_vocab *v, int32_t id);
strata_token_type strata_vocab_token_type(const strata_vocab *v, int32_t id); /* UNDEFINED for bad ids */
float strata_vocab_score(const strata_vocab *v, int32_t id);                 /* 0 for bad ids */
/* The token's text as stored in the file (SPM "▁" markers, BPE byte symbols), not
 * NUL-terminated; *len receives its length. NULL for bad ids. Lives as long as the vocab. */
const char *strata_vocab_token_text(const strata_vocab *v, int32_t id, size_t *len);
/* The id whose stored text is exactly text[0..len), or -1. */
int32_t strata_vocab_find(const strata_vocab *v, const char *text, size_t len);

/* Text -> ids.
 * add_special: prepend BOS if the vocab says add_bos_token, append EOS if add_eos_token.
 * parse_special: recognise control (and unknown-type) tokens written in the text.
 * Writes at most `cap` ids to out (out may be NULL when cap is 0) and returns the total
 * number of ids; when that exceeds cap, only the first cap were written: call again with a
 * buffer of the returned size. Returns -1 only when memory runs out (strata_last_error()).
 * Never fails on the content of `text`, which may hold any bytes (len of them). */
int64_t strata_tokenize(const strata_vocab *v, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *out, size_t cap);

/* One token's bytes: the SPM "▁" becomes a space, <0xNN> becomes byte NN, BPE byte symbols
 * become their bytes. Control/unknown-type tokens give "" unless `special` is true, in
 * which case their text is given as is. A piece may be part of a UTF-8 character.
 * Writes at most cap bytes (no NUL) and returns the piece's length; -1 for a bad id. */
int32_t strata_token_to_piece(const strata_vocab *v, int32_t id, char *buf, size_t cap, bool special);

/* Ids -> text: the concatenated pieces. When the vocab adds a space prefix (SPM), the single
 * space that tokenize() put in front of the text is removed from the first piece that
 * produces bytes, so that detokenize(tokenize(s)) == s. Writes at most cap bytes (no NUL)
 * and returns the total length; -1 (with an error message) when an id is out of range. */
int64_t strata_detokenize(const strata_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap,
                          bool special);

/* Streaming ids -> text for generation: each push returns only complete UTF-8 characters;
 * the bytes of a character split across tokens are held back until it is complete. Bytes
 * that can never become a valid character are released at once (never held forever),
 * and flush() releases whatever is held at the end. No leading space is removed (the
 * stream continues a prompt). push() does not allocate. */
typedef struct strata_detok_stream strata_detok_stream;

/* `v` must outlive the stream. NULL (with a message) when memory runs out. */
strata_detok_stream *strata_detok_stream_new(const strata_vocab *v, bool special);
void strata_detok_stream_free(strata_detok_stream *s); /* NULL is fine */
/* Feeds one id. Returns the bytes now ready (possibly none: *len = 0); the pointer is
 * owned by the stream and valid until the next call on it. Returns NULL (with a message)
 * for an out-of-range id, leaving the held bytes unchanged. */
const char *strata_detok_stream_push(strata_detok_stream *s, int32_t id, size_t *len);
/* Releases the held bytes (an incomplete character, as raw bytes) and resets the stream. */
const char *strata_detok_stream_flush(strata_detok_stream *s, size_t *len);

#endif

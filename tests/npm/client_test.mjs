// Drives a running `strata serve` with the official Ollama JavaScript client (npm "ollama")
// and the OpenAI client (npm "openai"): generate, chat (streamed and not), list, show, ps and
// /v1/chat/completions, asserting real results (the reference greedy text of stories260K).
//
// Environment: STRATA_URL (http://127.0.0.1:PORT), STRATA_MODEL (a model created from
// stories260K-f32, f16 or Q8_0). Run by tests/e2e/test_client_npm.c; exits non-zero on failure.
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const url = process.env.STRATA_URL;
const model = process.env.STRATA_MODEL;
assert.ok(url && model, 'STRATA_URL and STRATA_MODEL must be set');

// ../shared/testdata/README.md: "Once upon a time" (BOS added), greedy.
const reference =
  ', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a ' +
  "big, red ball. She wanted to play with it, but it was too high.\nLily's mom said";
const greedy = { temperature: 0, num_predict: 64 };

const ollama = new Ollama({ host: url });
const steps = [];
async function step(name, fn) {
  await fn();
  steps.push(name);
  console.log(`ok - ${name}`);
}

await step('generate (not streamed) reproduces the reference text', async () => {
  const r = await ollama.generate({ model, prompt: 'Once upon a time', options: greedy, stream: false });
  assert.equal(r.response, reference);
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 64);
  assert.ok(r.prompt_eval_count > 0 && r.total_duration > 0 && r.eval_duration > 0);
  assert.equal(r.done_reason, 'length');
});

await step('generate (streamed) gives the same text in pieces', async () => {
  let text = '';
  let parts = 0;
  let last;
  for await (const part of await ollama.generate({ model, prompt: 'Once upon a time', options: greedy, stream: true })) {
    text += part.response;
    parts++;
    last = part;
  }
  assert.equal(text, reference);
  assert.ok(parts > 2, `only ${parts} parts`);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 64);
});

const messages = [{ role: 'user', content: 'Once upon a time' }];
let chatText;
await step('chat (not streamed)', async () => {
  const r = await ollama.chat({ model, messages, options: greedy, stream: false });
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.ok(r.message.content.length > 0);
  assert.equal(r.done, true);
  chatText = r.message.content;
});

await step('chat (streamed) gives the same answer in pieces', async () => {
  let text = '';
  let parts = 0;
  let last;
  for await (const part of await ollama.chat({ model, messages, options: greedy, stream: true })) {
    assert.equal(part.message.role, 'assistant');
    text += part.message.content;
    parts++;
    last = part;
  }
  assert.equal(text, chatText);
  assert.ok(parts > 2, `only ${parts} parts`);
  assert.equal(last.done, true);
  assert.ok(last.eval_count > 0);
});

await step('list names the model', async () => {
  const r = await ollama.list();
  const m = r.models.find((x) => x.name === model || x.name === `${model}:latest`);
  assert.ok(m, `model not in ${JSON.stringify(r.models.map((x) => x.name))}`);
  assert.ok(m.size > 1000000, `size ${m.size}`); // 1.2 MB of weights at least
  assert.match(m.digest, /^[0-9a-f]{64}$/);
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.family, 'llama');
});

await step('show describes the model', async () => {
  const r = await ollama.show({ model });
  assert.equal(r.details.family, 'llama');
  assert.match(r.modelfile, /\nFROM /);
  assert.equal(r.model_info['general.architecture'], 'llama');
  assert.equal(r.model_info['llama.embedding_length'], 64);
  assert.ok(r.model_info['general.parameter_count'] > 200000);
  assert.deepEqual(r.capabilities, ['completion']);
});

await step('thinking and images are refused with Ollama\'s wording', async () => {
  await assert.rejects(ollama.generate({ model, prompt: 'x', think: true }), /does not support thinking/);
  await assert.rejects(ollama.chat({ model, messages: [{ role: 'user', content: 'x', images: ['aGVsbG8='] }] }),
    /does not support images/);
});

await step('embed with dimensions gives unit vectors of that length', async () => {
  const r = await ollama.embed({ model, input: ['Once upon a time', 'The cat'], dimensions: 16 });
  assert.equal(r.embeddings.length, 2);
  assert.equal(r.embeddings[0].length, 16);
  const norm = Math.sqrt(r.embeddings[0].reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
});

await step('ps lists the loaded model on the CPU', async () => {
  const r = await ollama.ps();
  const m = r.models.find((x) => x.name === model || x.name === `${model}:latest`);
  assert.ok(m, `model not loaded: ${JSON.stringify(r)}`);
  assert.ok(m.size > 0);
  assert.equal(m.size_vram, 0);
  assert.ok(m.context_length > 0);
  assert.ok(new Date(m.expires_at).getTime() > Date.now());
});

const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'strata' });
await step('OpenAI chat completion gives the Ollama chat answer', async () => {
  const r = await openai.chat.completions.create({ model, messages, temperature: 0, max_tokens: 64 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(r.choices[0].message.content, chatText);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.prompt_tokens > 0);
});

await step('OpenAI chat completion (streamed) gives it in pieces', async () => {
  let text = '';
  let chunks = 0;
  const stream = await openai.chat.completions.create({ model, messages, temperature: 0, max_tokens: 64, stream: true });
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
    chunks++;
  }
  assert.equal(text, chatText);
  assert.ok(chunks > 2, `only ${chunks} chunks`);
});

await step('OpenAI models lists the model', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model) || ids.includes(`${model}:latest`), JSON.stringify(ids));
});

await step('OpenAI embeddings and model retrieval', async () => {
  const e = await openai.embeddings.create({ model, input: 'Once upon a time', dimensions: 16 });
  assert.equal(e.data.length, 1);
  assert.equal(e.data[0].embedding.length, 16); // the client asks for base64 and decodes it
  const full = await openai.embeddings.create({ model, input: 'Once upon a time', encoding_format: 'float' });
  assert.equal(full.data[0].embedding.length, 64);
  const m = await openai.models.retrieve(`${model}:latest`);
  assert.equal(m.id, `${model}:latest`);
  assert.equal(m.object, 'model');
  await assert.rejects(openai.models.retrieve('no-such-model'), (err) => err.status === 404);
});

const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const ask = [{ role: 'user', content: 'Weather in Paris?' }];

await step('ollama chat with tools gives tool_calls (streamed and not)', async () => {
  const r = await ollama.chat({ model: 'caller', messages: ask, tools });
  assert.equal(r.message.tool_calls.length, 1);
  assert.equal(r.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(r.message.tool_calls[0].function.arguments, { city: 'Paris' });
  const calls = [];
  for await (const part of await ollama.chat({ model: 'caller', messages: ask, tools, stream: true })) {
    calls.push(...(part.message.tool_calls ?? []));
  }
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].function.arguments, { city: 'Paris' });
});

await step('OpenAI chat with tools gives tool_calls (streamed and not)', async () => {
  const r = await openai.chat.completions.create({ model: 'caller', messages: ask, tools });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const c = r.choices[0].message.tool_calls[0];
  assert.equal(c.type, 'function');
  assert.equal(c.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(c.function.arguments), { city: 'Paris' });
  let args = '';
  let name = '';
  let finish = null;
  for await (const chunk of await openai.chat.completions.create({ model: 'caller', messages: ask, tools, stream: true })) {
    for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
      name += d.function?.name ?? '';
      args += d.function?.arguments ?? '';
    }
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(name, 'get_weather');
  assert.deepEqual(JSON.parse(args), { city: 'Paris' });
  assert.equal(finish, 'tool_calls');
});

await step('tool history goes back to the model', async () => {
  const r = await ollama.chat({ model: 'caller', tools, messages: [...ask,
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: 'sunny', tool_name: 'get_weather' }] });
  assert.ok(r.prompt_eval_count > 0);
});

await step('thinking comes back apart from the answer', async () => {
  const r = await ollama.chat({ model: 'thinker', messages: [{ role: 'user', content: 'Once upon a time' }],
    think: true, options: { temperature: 0, num_predict: 16 } });
  assert.ok(r.message.thinking.length > 0, JSON.stringify(r.message));
  assert.equal(r.message.content, '');
  const s = await openai.chat.completions.create({ model: 'thinker', messages: [{ role: 'user', content: 'Once upon a time' }],
    temperature: 0, max_tokens: 16 });
  assert.equal(s.choices[0].message.reasoning, r.message.thinking);
});

console.log(`all ${steps.length} steps passed`);

/** Answers every request 204 without reading it: see wrangler.toml beside it. */
export default {
  fetch: () => new Response(null, { status: 204 }),
};

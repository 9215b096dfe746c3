/**
 * graphql-yoga's GraphiQL page (`graphiql-html.js`, imported by its GraphiQL plugin as
 * `../graphiql-html.js`) as the Worker bundles it (wrangler.toml `[alias]`): left out. Heimdall
 * builds Yoga with `graphiql: false`, so Yoga never installs that plugin, and serves its own page
 * at `/v1/graphiql` (src/routes/graphql/graphiql.ts).
 */
export default "<!doctype html><title>GraphiQL</title><p>GraphiQL is served at /v1/graphiql.";

/**
 * graphql-yoga's landing page (`landing-page-html.js`, imported by its unhandled-route plugin as
 * `../landing-page-html.js`) as the Worker bundles it (wrangler.toml `[alias]`): a line naming the
 * GraphQL endpoint instead of Yoga's 12 KiB welcome page. Yoga would show it for a GET of HTML at
 * any path but its endpoint; Heimdall passes it only requests for its endpoint (`/v1/gql`) and
 * builds it with `landingPage: false`, so the Worker never renders either.
 */
export default "<!doctype html><title>GraphQL</title><p>GraphQL is served at <a href=__GRAPHIQL_LINK__>__GRAPHIQL_LINK__</a>.";

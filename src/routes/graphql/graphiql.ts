const base = "/vendor/graphiql";

/** Monaco's workers, by the label Yoga's GraphiQL asks for (the editor's for any other). */
const workers = {
  json: `${base}/monacoeditorwork/json.worker.bundle.js`,
  graphql: `${base}/monacoeditorwork/graphql.worker..bundle.js`,
  editorWorkerService: `${base}/monacoeditorwork/editor.worker.bundle.js`,
};

/**
 * Yoga's GraphiQL (@graphql-yoga/graphiql), as graphql-yoga's `renderGraphiQL` draws it, but
 * with its script, styles and workers from the copies console/vite.config.ts puts next to the
 * console's files instead of unpkg.com: it works without internet, at the locked version.
 */
export const graphiqlPage = (options: { endpoint: string; title: string }) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${options.title}</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="${base}/graphiql.css">
  </head>
  <body class="no-focus-outline">
    <div id="root"></div>
    <script>
      const workers = ${JSON.stringify(workers)};
      self.MonacoEnvironment = {
        globalAPI: false,
        getWorkerUrl: (_, label) => workers[label] ?? workers.editorWorkerService,
      };
    </script>
    <script src="${base}/yoga-graphiql.umd.js"></script>
    <script>YogaGraphiQL.renderYogaGraphiQL(root, ${JSON.stringify(options)});</script>
  </body>
</html>`;

// Lockbox's GraphiQL (GraphiQL 2, React 17 and the explorer plugin, all
// served by Lockbox). Queries and mutations go over POST /graphql with the
// headers typed in the headers editor; subscriptions go over a graphql-ws
// socket to the same URL whose connection_init payload is those same
// headers, so {"Authorization": "Bearer <token>"} authenticates both.
(function () {
  "use strict";

  var React = window.React;
  var GraphiQL = window.GraphiQL;
  var graphql = GraphiQL.GraphQL;

  var endpoint = window.location.origin + window.location.pathname;
  var socketEndpoint = endpoint.replace(/^http/, "ws");

  var DEFAULT_QUERY =
    "# Welcome to Lockbox's GraphiQL.\n" +
    "#\n" +
    "# Put your token in the Headers tab below:\n" +
    '#   {"Authorization": "Bearer <token>"}\n' +
    "# Queries, mutations and subscriptions all use it.\n" +
    "\n" +
    "{\n" +
    "  me {\n" +
    "    name\n" +
    "  }\n" +
    "}\n";

  // An HTTP answer that is not GraphQL JSON (a 413, a proxy's error page)
  // shown as a GraphQL error rather than a parse failure.
  function readResult(response) {
    return response.text().then(function (text) {
      try {
        return JSON.parse(text);
      } catch (ignored) {
        return {
          errors: [{ message: "HTTP " + response.status + ": " + text.slice(0, 500) }],
        };
      }
    });
  }

  function httpFetch(params, headers) {
    return window
      .fetch(endpoint, {
        method: "POST",
        credentials: "omit",
        headers: Object.assign(
          { Accept: "application/json", "Content-Type": "application/json" },
          headers
        ),
        body: JSON.stringify(params),
      })
      .then(readResult);
  }

  // One graphql-ws client for the headers currently in the editor: typing
  // other headers starts a new one (a new connection_init). Clients are lazy,
  // so one that is replaced closes its socket when its last subscription ends.
  var socket = { key: null, client: null };

  function socketClient(headers) {
    var key = JSON.stringify(headers);
    if (socket.key !== key) {
      socket.key = key;
      socket.client = window.graphqlWs.createClient({
        url: socketEndpoint,
        connectionParams: headers,
        lazy: true,
        // A refused token (close 4403) stays refused: report it at once
        // instead of retrying; lost connections are retried as usual.
        shouldRetry: function (error) {
          return !(error && error.code === 4403);
        },
      });
    }
    return socket.client;
  }

  // graphql-ws reports a refused or lost socket as a CloseEvent; GraphiQL
  // shows a list of GraphQL errors best.
  function describe(error) {
    if (error && typeof error.code === "number" && "reason" in error) {
      var message =
        "WebSocket closed (" + error.code + (error.reason ? ": " + error.reason : "") + ")";
      if (error.code === 4403) {
        message += ": the token was refused; check the Authorization header in the Headers tab";
      }
      return [{ message: message }];
    }
    return error;
  }

  function subscribe(params, headers) {
    return {
      subscribe: function (sink) {
        var dispose = socketClient(headers).subscribe(params, {
          next: function (value) {
            sink.next(value);
          },
          error: function (error) {
            sink.error(describe(error));
          },
          complete: function () {
            sink.complete();
          },
        });
        return { unsubscribe: dispose };
      },
    };
  }

  // From the text about to run, not from GraphiQL's `documentAST`, which is
  // updated a moment after each edit and can still be the previous query's.
  function isSubscription(params) {
    var document;
    try {
      document = graphql.parse(params.query);
    } catch (ignored) {
      return false; // the server will say what is wrong with it
    }
    var operation = graphql.getOperationAST(document, params.operationName || undefined);
    return Boolean(operation) && operation.operation === "subscription";
  }

  // GraphiQL 2 calls fetcher(params, {headers, documentAST}).
  function fetcher(params, opts) {
    var headers = (opts && opts.headers) || {};
    if (isSubscription(params)) {
      return subscribe(params, headers);
    }
    return httpFetch(params, headers);
  }

  function LockboxGraphiQL() {
    var state = React.useState(DEFAULT_QUERY);
    var query = state[0];
    var setQuery = state[1];
    var explorer = window.GraphiQLPluginExplorer.useExplorerPlugin({
      query: query,
      onEdit: setQuery,
    });
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      query: query,
      onEditQuery: setQuery,
      plugins: [explorer],
      isHeadersEditorEnabled: true,
      // Tokens stay out of the browser's storage.
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: "headers",
    });
  }

  window.ReactDOM.render(
    React.createElement(LockboxGraphiQL),
    document.getElementById("graphiql")
  );
})();

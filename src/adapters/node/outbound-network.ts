import { promises as dns, type LookupAddress, type LookupOptions, lookup } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { Readable } from "node:stream";
import type { OutboundNetwork } from "../../ports/outbound";

/** Statuses whose response has no body (the Fetch API refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * Outbound requests on Node over node:http(s): the connection's own DNS lookup keeps only the
 * addresses the policy admits, so the address checked is the address connected to (no DNS
 * rebinding between the check and the connection). No redirect is followed here.
 */
export function createNodeOutboundNetwork(): OutboundNetwork {
  return {
    async resolveHost(hostname) {
      const answers = await dns.lookup(hostname, { all: true, verbatim: true });
      return answers.map((answer) => answer.address);
    },

    async send(request, admit) {
      const url = new URL(request.url);
      const checkedLookup: LookupFunction = (hostname, options: LookupOptions, callback) => {
        lookup(hostname, { ...options, all: true }, (error, answers: LookupAddress[]) => {
          if (error) return callback(error, "", 0);
          const admitted = answers.filter((answer) => admit(answer.address));
          const [first] = admitted;
          if (!first) {
            return callback(
              Object.assign(new Error(`${hostname} resolves to no admitted address`), {
                code: "EREFUSED",
              }),
              "",
              0,
            );
          }
          if (options.all)
            return (callback as (e: null, a: LookupAddress[]) => void)(null, admitted);
          return callback(null, first.address, first.family);
        });
      };
      const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = send(url, {
          method: request.method,
          headers: Object.fromEntries(request.headers),
          lookup: checkedLookup,
          signal: request.signal,
        });
        outgoing.once("response", resolve);
        outgoing.once("error", (error) => {
          outgoing.destroy();
          reject(error);
        });
        outgoing.end(body);
      });
      const headers = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        for (const one of Array.isArray(value) ? value : [value ?? ""]) headers.append(name, one);
      }
      const status = response.statusCode ?? 502;
      if (NULL_BODY.has(status)) response.resume();
      return new Response(
        NULL_BODY.has(status) ? null : (Readable.toWeb(response) as ReadableStream<Uint8Array>),
        { status, statusText: response.statusMessage ?? "", headers },
      );
    },
  };
}

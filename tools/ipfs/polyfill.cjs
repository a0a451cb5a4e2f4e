// Loaded with NODE_OPTIONS="--require <this file>" before js-ipfs (ipfs@0.66.1) starts: some of its
// dependencies call Promise.withResolvers, which Node only ships from version 22.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

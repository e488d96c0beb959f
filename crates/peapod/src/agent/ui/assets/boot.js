// Loads the page's modules. A load the network dropped (browsers drop every connection when
// the host's addresses change, ERR_NETWORK_CHANGED) is retried by loading the page again, a
// few times, since a failed module stays failed for the page's life.

const RELOADS = 'peapod-reloads';
const MAX_RELOADS = 5;

import('/ui/main.js')
  .then(() => sessionStorage.removeItem(RELOADS))
  .catch(() => {
    const reloads = Number(sessionStorage.getItem(RELOADS) || 0);
    if (reloads < MAX_RELOADS) {
      sessionStorage.setItem(RELOADS, String(reloads + 1));
      setTimeout(() => window.location.reload(), 300 * (reloads + 1));
    } else {
      sessionStorage.removeItem(RELOADS);
      document.querySelector('#status').textContent = 'The page could not load its scripts: reload it to try again.';
    }
  });

"use strict";
// The city overview (/map), drawn by folium: once its inline script has made the map, give
// it the base-map switcher of the other pages (basemaps.js).
document.addEventListener("DOMContentLoaded", () => {
  const map = Object.values(window).find((value) => value instanceof L.Map);
  if (map) attachBaseMaps(map);
});

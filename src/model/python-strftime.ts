// Python's datetime.strftime in the C locale, for the `strftime_now` global HF gives chat
// templates (Llama 3.2: strftime_now("%d %b %Y"), Granite: "%B %d, %Y"). @huggingface/jinja's
// own version knows fewer directives and uses the host locale for month names.
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

function dayOfYear(d: Date): number {
  const start = new Date(d.getFullYear(), 0, 1);
  return Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - start.getTime()) / 86_400_000) + 1;
}

function offset(d: Date): string {
  const m = -d.getTimezoneOffset();
  return (m >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(m) / 60)) + pad(Math.abs(m) % 60);
}

/** Formats local time `d` like Python's `d.strftime(format)` (C locale); unknown directives stay as written. */
export function pythonStrftime(d: Date, format: string): string {
  const h12 = d.getHours() % 12 === 0 ? 12 : d.getHours() % 12;
  const one = (c: string): string | null => {
    switch (c) {
      case "a":
        return DAYS[d.getDay()]!.slice(0, 3);
      case "A":
        return DAYS[d.getDay()]!;
      case "w":
        return String(d.getDay());
      case "d":
        return pad(d.getDate());
      case "b":
        return MONTHS[d.getMonth()]!.slice(0, 3);
      case "B":
        return MONTHS[d.getMonth()]!;
      case "m":
        return pad(d.getMonth() + 1);
      case "y":
        return pad(d.getFullYear() % 100);
      case "Y":
        return String(d.getFullYear());
      case "H":
        return pad(d.getHours());
      case "I":
        return pad(h12);
      case "p":
        return d.getHours() < 12 ? "AM" : "PM";
      case "M":
        return pad(d.getMinutes());
      case "S":
        return pad(d.getSeconds());
      case "f":
        return pad(d.getMilliseconds() * 1000, 6);
      case "j":
        return pad(dayOfYear(d), 3);
      case "z":
        return offset(d);
      case "D":
        return `${one("m")}/${one("d")}/${one("y")}`;
      case "F":
        return `${one("Y")}-${one("m")}-${one("d")}`;
      case "T":
        return `${one("H")}:${one("M")}:${one("S")}`;
      case "e":
        return String(d.getDate()).padStart(2, " ");
      case "c":
        return `${one("a")} ${one("b")} ${one("e")} ${one("T")} ${one("Y")}`;
      case "x":
        return `${one("m")}/${one("d")}/${one("y")}`;
      case "X":
        return `${one("H")}:${one("M")}:${one("S")}`;
      case "%":
        return "%";
      default:
        return null;
    }
  };
  return format.replace(/%(.)/gs, (all, c: string) => one(c) ?? all);
}

// Probe drives DESY's tine.jar client against a TINE server and prints one
// line per step, "STEP <name> <result>", that the opt-in check
// (make check-tinejar) asserts on. Steps are arguments:
//
//	read:<addr>                    default-format read (new TLink(addr), no data type)
//	readas:<addr>:<fmt>:<n>        read as format code fmt (e.g. 0 = CF_DOUBLE) with n elements
//	write:<addr>:<float>           write one FLOAT
//	pinfo:<ctx>:<srv>:<dev>:<prop> TQuery.getDevicePropertyInformation (count, and prop's fields)
//	pinfox:<ctx>:<srv>:<dev>:<prop> TQuery.getDevicePropertyInformationX
//	stock:<ctx>:<srv>              TQuery.getStockProperties
//	meta:<ctx>:<srv>               TQuery.getMetaProperties
//	appver:<ctx>:<srv>             TQuery.getAppVersion
//	props:<ctx>:<srv>:<dev>        TQuery.getDeviceProperties
//	devices:<ctx>:<srv>            TQuery.getDeviceNames
//	thresh:<ctx>:<srv>:<prop>      TQuery.getThresholds (1 element)
//	big:<addr>:<n>:<tcp|udp>       read n records of 4 floats (CF_FLOAT), over TCP (CM_STREAM) or UDP
//	loop:<addr>:<n>[:<tag>]        n synchronous INT32 reads of one TLink, prints reads/s (tag: to tell repeats apart)
//	loopnew:<addr>:<n>             the same with a new TLink per read (execute(), close())
import de.desy.tine.client.TLink;
import de.desy.tine.dataUtils.TDataType;
import de.desy.tine.definitions.TAccess;
import de.desy.tine.definitions.TFormat;
import de.desy.tine.definitions.TMode;
import de.desy.tine.queryUtils.PropertyQueryEx;
import de.desy.tine.queryUtils.TQuery;
import de.desy.tine.queryUtils.XPropertyQuery;
import java.util.Arrays;

public class Probe {
    static void out(String step, String s) {
        System.out.println("STEP " + step + " " + s);
        System.out.flush();
    }

    // err gives the code, tine.jar's text for it and, on an error, the
    // server's status text (getLastError shows it only for codes >= 512;
    // the link keeps it in linkStatusStringBuffer).
    static String err(TLink l, int cc) {
        String s = "cc=" + cc + " err=\"" + l.getLastError() + "\"";
        if (cc != 0) s += " status=\"" + new String(l.linkStatusStringBuffer).trim() + "\"";
        return s;
    }

    static String show(TDataType d) {
        int n = d.getCompletionLength();
        String v;
        switch (d.getFormat()) {
            case TFormat.CF_INT32: { int[] a = new int[n]; d.getData(a); v = Arrays.toString(a); break; }
            case TFormat.CF_FLOAT: { float[] a = new float[n]; d.getData(a); v = Arrays.toString(a); break; }
            case TFormat.CF_DOUBLE: { double[] a = new double[n]; d.getData(a); v = Arrays.toString(a); break; }
            case TFormat.CF_TEXT: { byte[] a = new byte[n]; d.getData(a); v = "\"" + new String(a) + "\""; break; }
            default: v = d.toString();
        }
        if (v.length() > 200) v = v.substring(0, 200) + "...";
        return "fmt=" + TFormat.toString(d.getFormat()) + " n=" + n + " val=" + v;
    }

    // info summarises property information: the count and the named one.
    static String info(XPropertyQuery[] q, String name) {
        if (q == null) return "null";
        String s = "n=" + q.length;
        for (XPropertyQuery p : q) {
            if (!p.prpName.trim().equals(name)) continue;
            s += " name=" + p.prpName.trim() + " fmt=" + TFormat.toString(p.prpFormat) + " size=" + p.prpSize
                + " fmtIn=" + p.prpFormatIn + " sizeIn=" + p.prpSizeIn + " access=" + p.prpAccess
                + " units=\"" + p.prpUnits.trim() + "\" min=" + p.prpMinValue + " max=" + p.prpMaxValue
                + " rows=" + p.numRows + " rowSize=" + p.rowSize + " desc=\"" + p.prpDescription.trim() + "\"";
        }
        return s;
    }

    public static void main(String[] args) throws Exception {
        for (String a : args) {
            String[] f = a.split(":", -1);
            String step = a;
            try {
                switch (f[0]) {
                    case "read": {
                        TLink l = new TLink(f[1]);
                        int cc = l.execute(2000);
                        out(step, err(l, cc) + " " + show(l.getOutputDataObject()));
                        l.close();
                        break;
                    }
                    case "readas": {
                        short fmt = Short.parseShort(f[2]);
                        TDataType d = new TDataType(Integer.parseInt(f[3]), fmt);
                        TLink l = new TLink(f[1], d, null, TAccess.CA_READ);
                        int cc = l.execute(2000);
                        out(step, err(l, cc) + " " + show(d));
                        l.close();
                        break;
                    }
                    case "write": {
                        TDataType din = new TDataType(new float[] { Float.parseFloat(f[2]) });
                        TLink l = new TLink(f[1], null, din, TAccess.CA_WRITE);
                        int cc = l.execute(2000);
                        out(step, err(l, cc));
                        l.close();
                        break;
                    }
                    case "pinfo": {
                        PropertyQueryEx[] q = TQuery.getDevicePropertyInformation(f[1], f[2], f[3], "*");
                        out(step, info(q, f[4]));
                        break;
                    }
                    case "pinfox": {
                        XPropertyQuery[] q = TQuery.getDevicePropertyInformationX(f[1], f[2], f[3], "*");
                        out(step, info(q, f[4]));
                        break;
                    }
                    case "stock": {
                        String[] s = TQuery.getStockProperties(f[1], f[2]);
                        out(step, s == null ? "null" : "n=" + s.length + " " + Arrays.toString(s));
                        break;
                    }
                    case "meta": {
                        String[] s = TQuery.getMetaProperties(f[1], f[2]);
                        out(step, s == null ? "null" : "n=" + s.length + " " + Arrays.toString(s));
                        break;
                    }
                    case "appver": {
                        out(step, "\"" + TQuery.getAppVersion(f[1], f[2]) + "\"");
                        break;
                    }
                    case "props": {
                        String[] s = TQuery.getDeviceProperties(f[1], f[2], f[3]);
                        out(step, s == null ? "null" : "n=" + s.length + " " + Arrays.toString(s));
                        break;
                    }
                    case "devices": {
                        String[] s = TQuery.getDeviceNames(f[1], f[2]);
                        out(step, s == null ? "null" : "n=" + s.length + " " + Arrays.toString(s));
                        break;
                    }
                    case "thresh": {
                        float[] mx = new float[1], mn = new float[1];
                        int cc = TQuery.getThresholds(f[1], f[2], f[3], mx, mn);
                        out(step, "cc=" + cc + " max=" + mx[0] + " min=" + mn[0]);
                        break;
                    }
                    case "big": {
                        int n = Integer.parseInt(f[2]);
                        float[] buf = new float[4 * n];
                        TDataType d = new TDataType(buf);
                        TLink l = new TLink(f[1], d, null, TAccess.CA_READ);
                        short mode = TMode.CM_SINGLE;
                        if (f[3].equals("tcp")) mode |= TMode.CM_STREAM;
                        long t0 = System.nanoTime();
                        int cc = l.execute(10000, mode);
                        long ms = (System.nanoTime() - t0) / 1000000;
                        int good = 0;
                        for (int i = 0; i < n; i++) if (buf[4 * i] == (float) i) good++;
                        out(step, err(l, cc) + " got=" + d.getCompletionLength() + " records_ok=" + good + " ms=" + ms);
                        l.close();
                        break;
                    }
                    case "loop": {
                        int n = Integer.parseInt(f[2]);
                        int[] v = new int[1];
                        TDataType d = new TDataType(v);
                        TLink l = new TLink(f[1], d, null, TAccess.CA_READ);
                        int bad = 0;
                        l.execute(2000);
                        long t0 = System.nanoTime();
                        for (int i = 0; i < n; i++) if (l.execute(2000) != 0) bad++;
                        double s = (System.nanoTime() - t0) / 1e9;
                        out(step, String.format("reads=%d failed=%d seconds=%.3f reads/s=%.0f", n, bad, s, n / s));
                        l.close();
                        break;
                    }
                    case "loopnew": {
                        int n = Integer.parseInt(f[2]);
                        int bad = 0;
                        long t0 = System.nanoTime();
                        for (int i = 0; i < n; i++) {
                            int[] v = new int[1];
                            TLink l = new TLink(f[1], new TDataType(v), null, TAccess.CA_READ);
                            if (l.execute() != 0) bad++;
                            l.close();
                        }
                        double s = (System.nanoTime() - t0) / 1e9;
                        out(step, String.format("reads=%d failed=%d seconds=%.3f reads/s=%.0f", n, bad, s, n / s));
                        break;
                    }
                    default:
                        out(step, "unknown step");
                }
            } catch (Throwable t) {
                out(step, "exception " + t);
            }
        }
        System.exit(0);
    }
}

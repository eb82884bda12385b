// RefServer is a tiny TINE server written with DESY's tine.jar, the
// reference Tioga's TINE server is compared with (make check-tinejar):
// /TEST/REFSRV/tioga, equipment module REFEQM, with properties shaped like
// Tioga's. Usage: java -cp tine.jar:. RefServer <port offset>
import de.desy.tine.dataUtils.TDataType;
import de.desy.tine.definitions.TAccess;
import de.desy.tine.definitions.TFormat;
import de.desy.tine.server.devices.TDevice;
import de.desy.tine.server.equipment.TEquipmentModule;
import de.desy.tine.server.equipment.TEquipmentModuleFactory;
import de.desy.tine.server.properties.TExportProperty;
import de.desy.tine.server.properties.TPropertyDescription;
import de.desy.tine.server.properties.TPropertyHandler;

public class RefServer {
    static int frames = 42;
    static float spotLevel = 6f;
    static float[] dozor = new float[8 * 4];
    static float[] beam = {0f, 0f};

    static TExportProperty prop(String name, String desc, short fmt, int size, short access) {
        TExportProperty p = new TExportProperty();
        p.setName(name);
        p.setDescription(new TPropertyDescription(desc));
        p.setOutputFormat(fmt);
        p.setOutputSize(size);
        if ((access & TAccess.CA_WRITE) != 0) {
            p.setInputFormat(fmt);
            p.setInputSize(size);
        }
        p.setAccessMode(access);
        return p;
    }

    public static void main(String[] args) throws Exception {
        int offset = Integer.parseInt(args[0]);
        for (int i = 0; i < 8; i++) {
            dozor[4 * i] = i; dozor[4 * i + 1] = 10 * i + 1; dozor[4 * i + 2] = 0.25f * i; dozor[4 * i + 3] = 1.5f + i;
        }
        TEquipmentModuleFactory f = TEquipmentModuleFactory.getInstance();
        f.setFecContext("TEST");
        f.setFecName("REFFEC");
        f.setFecSubsystem("TIOGA");
        TEquipmentModule m = new TEquipmentModule("REFEQM");
        m.setExportName("REFSRV");
        m.registerDevices(new TDevice[] { new TDevice("tioga", 0) });
        m.registerProperty(prop("frame-count", "[0:1000000 frames]number of frames seen", TFormat.CF_INT32, 1, TAccess.CA_READ),
            new TPropertyHandler() {
                protected int call(String dev, TDataType dout, TDataType din, TAccess acc) {
                    if (acc.isWrite()) return 73;
                    dout.putData(new int[] { frames });
                    return 0;
                }
            });
        m.registerProperty(prop("spot-level", "[1:9 sigma]strong-pixel threshold", TFormat.CF_FLOAT, 1, (short) (TAccess.CA_READ | TAccess.CA_WRITE)),
            new TPropertyHandler() {
                protected int call(String dev, TDataType dout, TDataType din, TAccess acc) {
                    if (acc.isWrite()) {
                        float[] v = new float[1];
                        din.getData(v);
                        spotLevel = v[0];
                    }
                    dout.putData(new float[] { spotLevel });
                    return 0;
                }
            });
        TExportProperty dp = prop("dozor-pass", "[0:1000]dozor records (frame,spots,score,res)", TFormat.CF_FLOAT, 32, TAccess.CA_READ);
        dp.getDescription().setArrayNumRows(8);
        dp.getDescription().setArrayRowLength(4);
        m.registerProperty(dp, new TPropertyHandler() {
            protected int call(String dev, TDataType dout, TDataType din, TAccess acc) {
                dout.putData(dozor);
                return 0;
            }
        });
        m.registerProperty(prop("beam-xy", "[0:300 mm]beam centre", TFormat.CF_FLOAT, 2, TAccess.CA_READ),
            new TPropertyHandler() {
                protected int call(String dev, TDataType dout, TDataType din, TAccess acc) {
                    dout.putData(beam);
                    return 0;
                }
            });
        m.registerProperty(prop("status", "server status text", TFormat.CF_TEXT, 64, TAccess.CA_READ),
            new TPropertyHandler() {
                protected int call(String dev, TDataType dout, TDataType din, TAccess acc) {
                    dout.putData("idle".toCharArray());
                    return 0;
                }
            });
        f.systemInit(offset);
        System.out.println("RefServer ready offset " + offset);
        f.systemWait(-1);
    }
}
